# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_nexscopectl_global_optspecs
    string join \n json socket= no-autostart project= h/help V/version
end

function __fish_nexscopectl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_nexscopectl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_nexscopectl_using_subcommand
    set -l cmd (__fish_nexscopectl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -s V -l version -d 'Print version'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "ping" -d 'Check that nexscoped answers, and how fast'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "status" -d 'Show what nexscoped holds: projects, rooms, agent sessions'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "daemon" -d 'Start, stop or restart nexscoped, or ask whether it runs'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "start" -d 'Join the project\'s room'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "stop" -d 'Leave the room (inbox, history and files stay)'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "say" -d 'Say something: leading @names (or --to) address people, else everyone'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "receipts" -d 'How far a message (by msgId), or every message of yours on a thread, got at each recipient'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "who" -d 'Who is online'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "inbox" -d 'Mentions waiting for you, and the latest handled ones'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "accept" -d 'Take the thread\'s pending mentions as a request'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "reject" -d 'Decline the thread\'s pending mentions and tell their senders'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "append" -d 'Add to a thread as a person, to everyone who took part in it'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "mode" -d 'Show the mode, or set it: manual or auto'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "history" -d 'The latest messages in and out'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "files" -d 'Files received in this project'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "watch" -d 'Follow the room live, like tail -f'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "query" -d 'Ask an agent session something and stream its answer; Ctrl-C cancels the turn'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "sessions" -d 'List agent sessions, live and recorded'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "cancel" -d 'Interrupt the session\'s running turn'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "close" -d 'Stop the session\'s agent process; its conversation is kept unless --forget'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "usage" -d 'Token usage of a session, in total and per turn; with --room, what the room\'s conversations between agents cost, per thread'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "skills" -d 'The session\'s skills, tools, slash commands and model'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "config" -d 'The configuration: import a project\'s nexscope v1 settings'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "mcp" -d 'Serve MCP on stdin/stdout: the nexscope_* tools, for Codex and other MCP clients'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "install" -d 'Wire an agent up to nexscope (Claude Code)'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "hook" -d 'Claude Code hooks: read the hook\'s JSON on stdin, print its answer'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "web" -d 'Print a one-time login link to the web page (rooms, inbox, agent sessions) and open it in the browser when there is a display'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c nexscopectl -n "__fish_nexscopectl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand ping" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand ping" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand ping" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand ping" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand ping" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand status" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand status" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand status" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand status" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand status" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and not __fish_seen_subcommand_from start stop restart status help" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and not __fish_seen_subcommand_from start stop restart status help" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and not __fish_seen_subcommand_from start stop restart status help" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and not __fish_seen_subcommand_from start stop restart status help" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and not __fish_seen_subcommand_from start stop restart status help" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and not __fish_seen_subcommand_from start stop restart status help" -f -a "start" -d 'Start nexscoped unless it is running (through systemd or launchd when they own it)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and not __fish_seen_subcommand_from start stop restart status help" -f -a "stop" -d 'Stop nexscoped cleanly; succeeds when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and not __fish_seen_subcommand_from start stop restart status help" -f -a "restart" -d 'Stop, then start'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and not __fish_seen_subcommand_from start stop restart status help" -f -a "status" -d 'Show whether nexscoped runs, without starting it (exit 3 if not)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and not __fish_seen_subcommand_from start stop restart status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from start" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from start" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from start" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from start" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from start" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from stop" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from stop" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from stop" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from stop" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from stop" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from restart" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from restart" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from restart" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from restart" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from restart" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from status" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from status" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from status" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from status" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from help" -f -a "start" -d 'Start nexscoped unless it is running (through systemd or launchd when they own it)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from help" -f -a "stop" -d 'Stop nexscoped cleanly; succeeds when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from help" -f -a "restart" -d 'Stop, then start'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show whether nexscoped runs, without starting it (exit 3 if not)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand daemon; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand start" -s n -l name -d 'Your name in the room [default: the config\'s default_name]' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand start" -l mode -d 'manual (mentions wait in the inbox) or auto (agents answer them)' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand start" -l relay -d 'A relay URL (ws:// or wss://) instead of the configured or embedded one' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand start" -l room -d 'A room on the relay other than the default one' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand start" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand start" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand start" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand start" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand start" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand stop" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand stop" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand stop" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand stop" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand stop" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand say" -l role -d 'user (a person, the default here) or userAgent (an agent)' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand say" -l thread -d 'Reply on this thread' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand say" -l file -d 'Send this file, with the text as its caption' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand say" -l to -d 'A recipient (repeat, or comma-separated), besides leading @names' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand say" -l hop-count -d 'An incoming hop count to carry on (agents replying on their own)' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand say" -l wait -d 'Wait until every recipient reached this receipt state: stored, surfaced or answered' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand say" -l timeout -d 'Seconds to wait at most with --wait (1 to 600)' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand say" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand say" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand say" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand say" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand say" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand receipts" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand receipts" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand receipts" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand receipts" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand receipts" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand who" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand who" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand who" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand who" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand who" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand inbox" -l offset -d 'Skip this many pending mentions (the next page)' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand inbox" -l limit -d 'Pending mentions to show, 1 to 500' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand inbox" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand inbox" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand inbox" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand inbox" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand inbox" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand accept" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand accept" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand accept" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand accept" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand accept" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand reject" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand reject" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand reject" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand reject" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand reject" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand append" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand append" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand append" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand append" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand append" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand mode" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand mode" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand mode" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand mode" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand mode" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand history" -l limit -d 'How many (1 to 500)' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand history" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand history" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand history" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand history" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand history" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand files" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand files" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand files" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand files" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand files" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand watch" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand watch" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand watch" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand watch" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand watch" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand query" -s s -l session -d 'The session\'s name' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand query" -l cwd -d 'The session\'s working directory [default: the current directory]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand query" -l model -d 'The model for this turn (and the session\'s from now on)' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand query" -l permission-mode -d 'default, acceptEdits, bypassPermissions, plan, dontAsk or auto' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand query" -l backend -d 'claude or codex, for a new session [default: the config\'s backend]' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand query" -l skill -d 'A skill the agent must run (repeat); a new set starts a fresh conversation' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand query" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand query" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand query" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand query" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand query" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand sessions" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand sessions" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand sessions" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand sessions" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand sessions" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand cancel" -s s -l session -d 'The session\'s name' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand cancel" -l cwd -d 'The session\'s working directory [default: the current directory]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand cancel" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand cancel" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand cancel" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand cancel" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand cancel" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand close" -s s -l session -d 'The session\'s name' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand close" -l cwd -d 'The session\'s working directory [default: the current directory]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand close" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand close" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand close" -l forget -d 'Also forget the conversation: the next query starts a new one'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand close" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand close" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand close" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand usage" -s s -l session -d 'The session\'s name' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand usage" -l cwd -d 'The session\'s working directory [default: the current directory]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand usage" -l turns -d 'List this many of the latest turns' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand usage" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand usage" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand usage" -l room -d 'The project\'s room instead of a session (the project: --cwd, or here)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand usage" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand usage" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand usage" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand skills" -s s -l session -d 'The session\'s name' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand skills" -l cwd -d 'The session\'s working directory [default: the current directory]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand skills" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand skills" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand skills" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand skills" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand skills" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand config; and not __fish_seen_subcommand_from import-v1 help" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand config; and not __fish_seen_subcommand_from import-v1 help" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand config; and not __fish_seen_subcommand_from import-v1 help" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand config; and not __fish_seen_subcommand_from import-v1 help" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand config; and not __fish_seen_subcommand_from import-v1 help" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand config; and not __fish_seen_subcommand_from import-v1 help" -f -a "import-v1" -d 'Import the project\'s v1 config.json into config.toml'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand config; and not __fish_seen_subcommand_from import-v1 help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand config; and __fish_seen_subcommand_from import-v1" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand config; and __fish_seen_subcommand_from import-v1" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand config; and __fish_seen_subcommand_from import-v1" -l dry-run -d 'Print what would change; change nothing'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand config; and __fish_seen_subcommand_from import-v1" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand config; and __fish_seen_subcommand_from import-v1" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand config; and __fish_seen_subcommand_from import-v1" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "import-v1" -d 'Import the project\'s v1 config.json into config.toml'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand mcp" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand mcp" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand mcp" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand mcp" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand mcp" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and not __fish_seen_subcommand_from codex claude help" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and not __fish_seen_subcommand_from codex claude help" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and not __fish_seen_subcommand_from codex claude help" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and not __fish_seen_subcommand_from codex claude help" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and not __fish_seen_subcommand_from codex claude help" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and not __fish_seen_subcommand_from codex claude help" -f -a "codex" -d 'Codex: `nexscopectl mcp` as an MCP server in $CODEX_HOME/config.toml (~/.codex by default), how to use it in $CODEX_HOME/AGENTS.md, and hooks in $CODEX_HOME/hooks.json (trusted in config.toml) that let a `codex --no-daemon` session be woken by the room'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and not __fish_seen_subcommand_from codex claude help" -f -a "claude" -d 'Claude Code: the nexscope plugin (slash commands, hooks). With the global `--project [DIR]`: for that project only (<project>/.claude/settings.json) instead of the user'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and not __fish_seen_subcommand_from codex claude help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from codex" -l name -d 'The server\'s name in config.toml' -r
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from codex" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from codex" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from codex" -l uninstall -d 'Take it out again'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from codex" -l dry-run -d 'Print what would change; change nothing'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from codex" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from codex" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from codex" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from claude" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from claude" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from claude" -l user -d 'Enable it for this user ($CLAUDE_CONFIG_DIR/settings.json, by default ~/.claude/settings.json; the default)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from claude" -l uninstall -d 'Take it out again'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from claude" -l dry-run -d 'Print what would change; change nothing'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from claude" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from claude" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from claude" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from help" -f -a "codex" -d 'Codex: `nexscopectl mcp` as an MCP server in $CODEX_HOME/config.toml (~/.codex by default), how to use it in $CODEX_HOME/AGENTS.md, and hooks in $CODEX_HOME/hooks.json (trusted in config.toml) that let a `codex --no-daemon` session be woken by the room'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from help" -f -a "claude" -d 'Claude Code: the nexscope plugin (slash commands, hooks). With the global `--project [DIR]`: for that project only (<project>/.claude/settings.json) instead of the user'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand install; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and not __fish_seen_subcommand_from session-start user-prompt-submit stop watch codex help" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and not __fish_seen_subcommand_from session-start user-prompt-submit stop watch codex help" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and not __fish_seen_subcommand_from session-start user-prompt-submit stop watch codex help" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and not __fish_seen_subcommand_from session-start user-prompt-submit stop watch codex help" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and not __fish_seen_subcommand_from session-start user-prompt-submit stop watch codex help" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and not __fish_seen_subcommand_from session-start user-prompt-submit stop watch codex help" -f -a "session-start" -d 'SessionStart: this session\'s queue starts now (it sees what arrives from here on, and what no session of the project has seen yet)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and not __fish_seen_subcommand_from session-start user-prompt-submit stop watch codex help" -f -a "user-prompt-submit" -d 'UserPromptSubmit: new room events as additional context'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and not __fish_seen_subcommand_from session-start user-prompt-submit stop watch codex help" -f -a "stop" -d 'Stop: block while fresh @mentions wait for an auto-mode reply'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and not __fish_seen_subcommand_from session-start user-prompt-submit stop watch codex help" -f -a "watch" -d 'Stop (async, rewake): wait for the next room event and wake Claude with it'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and not __fish_seen_subcommand_from session-start user-prompt-submit stop watch codex help" -f -a "codex" -d 'Codex\'s SessionStart and UserPromptSubmit: the live Codex TUI registers, so that a mention can start a turn in it (`codex queue`)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and not __fish_seen_subcommand_from session-start user-prompt-submit stop watch codex help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from session-start" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from session-start" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from session-start" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from session-start" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from session-start" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from user-prompt-submit" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from user-prompt-submit" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from user-prompt-submit" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from user-prompt-submit" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from user-prompt-submit" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from stop" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from stop" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from stop" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from stop" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from stop" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from watch" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from watch" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from watch" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from watch" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from watch" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from codex" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from codex" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from codex" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from codex" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from codex" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "session-start" -d 'SessionStart: this session\'s queue starts now (it sees what arrives from here on, and what no session of the project has seen yet)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "user-prompt-submit" -d 'UserPromptSubmit: new room events as additional context'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "stop" -d 'Stop: block while fresh @mentions wait for an auto-mode reply'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "watch" -d 'Stop (async, rewake): wait for the next room event and wake Claude with it'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "codex" -d 'Codex\'s SessionStart and UserPromptSubmit: the live Codex TUI registers, so that a mention can start a turn in it (`codex queue`)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand web" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand web" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand web" -l no-open -d 'Only print the link; do not start a browser'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand web" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand web" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand web" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand completions" -l socket -d 'The daemon\'s control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand completions" -l project -d 'The project (its root directory) for chat commands [default: the current directory]. For `install claude`, alone: this project only' -r -F
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand completions" -l json -d 'Print machine-readable JSON on stdout; messages stay on stderr'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand completions" -l no-autostart -d 'Do not start nexscoped when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand completions" -s h -l help -d 'Print help'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "ping" -d 'Check that nexscoped answers, and how fast'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "status" -d 'Show what nexscoped holds: projects, rooms, agent sessions'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "daemon" -d 'Start, stop or restart nexscoped, or ask whether it runs'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "start" -d 'Join the project\'s room'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "stop" -d 'Leave the room (inbox, history and files stay)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "say" -d 'Say something: leading @names (or --to) address people, else everyone'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "receipts" -d 'How far a message (by msgId), or every message of yours on a thread, got at each recipient'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "who" -d 'Who is online'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "inbox" -d 'Mentions waiting for you, and the latest handled ones'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "accept" -d 'Take the thread\'s pending mentions as a request'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "reject" -d 'Decline the thread\'s pending mentions and tell their senders'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "append" -d 'Add to a thread as a person, to everyone who took part in it'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "mode" -d 'Show the mode, or set it: manual or auto'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "history" -d 'The latest messages in and out'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "files" -d 'Files received in this project'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "watch" -d 'Follow the room live, like tail -f'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "query" -d 'Ask an agent session something and stream its answer; Ctrl-C cancels the turn'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "sessions" -d 'List agent sessions, live and recorded'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "cancel" -d 'Interrupt the session\'s running turn'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "close" -d 'Stop the session\'s agent process; its conversation is kept unless --forget'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "usage" -d 'Token usage of a session, in total and per turn; with --room, what the room\'s conversations between agents cost, per thread'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "skills" -d 'The session\'s skills, tools, slash commands and model'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "config" -d 'The configuration: import a project\'s nexscope v1 settings'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "mcp" -d 'Serve MCP on stdin/stdout: the nexscope_* tools, for Codex and other MCP clients'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "install" -d 'Wire an agent up to nexscope (Claude Code)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "hook" -d 'Claude Code hooks: read the hook\'s JSON on stdin, print its answer'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "web" -d 'Print a one-time login link to the web page (rooms, inbox, agent sessions) and open it in the browser when there is a display'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and not __fish_seen_subcommand_from ping status daemon start stop say receipts who inbox accept reject append mode history files watch query sessions cancel close usage skills config mcp install hook web completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and __fish_seen_subcommand_from daemon" -f -a "start" -d 'Start nexscoped unless it is running (through systemd or launchd when they own it)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and __fish_seen_subcommand_from daemon" -f -a "stop" -d 'Stop nexscoped cleanly; succeeds when it is not running'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and __fish_seen_subcommand_from daemon" -f -a "restart" -d 'Stop, then start'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and __fish_seen_subcommand_from daemon" -f -a "status" -d 'Show whether nexscoped runs, without starting it (exit 3 if not)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "import-v1" -d 'Import the project\'s v1 config.json into config.toml'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and __fish_seen_subcommand_from install" -f -a "codex" -d 'Codex: `nexscopectl mcp` as an MCP server in $CODEX_HOME/config.toml (~/.codex by default), how to use it in $CODEX_HOME/AGENTS.md, and hooks in $CODEX_HOME/hooks.json (trusted in config.toml) that let a `codex --no-daemon` session be woken by the room'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and __fish_seen_subcommand_from install" -f -a "claude" -d 'Claude Code: the nexscope plugin (slash commands, hooks). With the global `--project [DIR]`: for that project only (<project>/.claude/settings.json) instead of the user'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "session-start" -d 'SessionStart: this session\'s queue starts now (it sees what arrives from here on, and what no session of the project has seen yet)'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "user-prompt-submit" -d 'UserPromptSubmit: new room events as additional context'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "stop" -d 'Stop: block while fresh @mentions wait for an auto-mode reply'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "watch" -d 'Stop (async, rewake): wait for the next room event and wake Claude with it'
complete -c nexscopectl -n "__fish_nexscopectl_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "codex" -d 'Codex\'s SessionStart and UserPromptSubmit: the live Codex TUI registers, so that a mention can start a turn in it (`codex queue`)'
