//! Rewrites the generated man pages and completions in the repository.

fn main() {
    let root = nexscope_tests::docs::repo_root();
    for (path, contents) in nexscope_tests::docs::generate() {
        let target = root.join(&path);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).expect("create directory");
        }
        std::fs::write(&target, contents).expect("write generated file");
        println!("wrote {}", path.display());
    }
}
