# Homebrew formula for nexscope: `brew install ./packaging/homebrew/nexscope.rb`
# (or from a tap), then `brew services start nexscope`.
class Nexscope < Formula
  desc "Chat rooms and headless sessions for AI coding agents and their humans"
  homepage "https://github.com/nexscope/nexscope"
  url "https://github.com/nexscope/nexscope/archive/refs/tags/v0.1.0.tar.gz"
  sha256 "0000000000000000000000000000000000000000000000000000000000000000"
  license any_of: ["MIT", "Apache-2.0"]
  head "https://github.com/nexscope/nexscope.git", branch: "main"

  depends_on "rust" => :build

  def install
    system "cargo", "install", *std_cargo_args(path: "nexscoped")
    system "cargo", "install", *std_cargo_args(path: "nexscopectl")
    man1.install Dir["man/*.1"]
    man5.install Dir["man/*.5"]
    man8.install Dir["man/*.8"]
    generate_completions_from_executable(bin/"nexscopectl", "completions")
  end

  # brew's launchd/systemd service: nexscoped binds its own control socket
  # (brew cannot hand over a unix socket), runs in the foreground, exits 0
  # on SIGTERM; restarted only if it fails.
  service do
    run [opt_bin/"nexscoped"]
    keep_alive successful_exit: false
    log_path var/"log/nexscoped.log"
    error_log_path var/"log/nexscoped.log"
    process_type :background
  end

  test do
    assert_match version.to_s, shell_output("#{bin}/nexscoped --version")
    assert_match version.to_s, shell_output("#{bin}/nexscopectl --version")
    ENV["XDG_RUNTIME_DIR"] = testpath/"run"
    ENV["XDG_STATE_HOME"] = testpath/"state"
    ENV["XDG_CONFIG_HOME"] = testpath/"config"
    ENV["XDG_DATA_HOME"] = testpath/"data"
    assert_match "pong", shell_output("#{bin}/nexscopectl ping")
    system bin/"nexscopectl", "daemon", "stop"
  end
end
