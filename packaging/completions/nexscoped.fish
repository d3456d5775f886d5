# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_nexscoped_global_optspecs
    string join \n config= socket= log-level= agents-listen= web-listen= check-config h/help V/version
end

function __fish_nexscoped_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_nexscoped_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_nexscoped_using_subcommand
    set -l cmd (__fish_nexscoped_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c nexscoped -n "__fish_nexscoped_needs_command" -l config -d 'Configuration file [default: $XDG_CONFIG_HOME/nexscope/config.toml]' -r -F
complete -c nexscoped -n "__fish_nexscoped_needs_command" -l socket -d 'Control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock]; ignored when systemd passes the socket' -r -F
complete -c nexscoped -n "__fish_nexscoped_needs_command" -l log-level -d 'Log level [default: the config\'s log_level, else info]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c nexscoped -n "__fish_nexscoped_needs_command" -l agents-listen -d 'Serve the nx-ce agent WebSocket API on this loopback address (nx-ce\'s port is 43720), overriding [agents] listen' -r
complete -c nexscoped -n "__fish_nexscoped_needs_command" -l web-listen -d 'Serve the web page on this address, or "off", overriding [web] listen [default: 127.0.0.1:43721, or a free port when another user\'s daemon has that one]' -r
complete -c nexscoped -n "__fish_nexscoped_needs_command" -l check-config -d 'Check the configuration, print what is wrong, and exit'
complete -c nexscoped -n "__fish_nexscoped_needs_command" -s h -l help -d 'Print help'
complete -c nexscoped -n "__fish_nexscoped_needs_command" -s V -l version -d 'Print version'
complete -c nexscoped -n "__fish_nexscoped_needs_command" -f -a "relay" -d 'Run a relay server for a team (the WebSocket rooms agents talk in)'
complete -c nexscoped -n "__fish_nexscoped_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l listen -d 'Address to listen on' -r
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l token-file -d 'File holding the shared token (mode 0600). The token may also come from NEXSCOPE_TOKEN; never put it on the command line' -r -F
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l users-file -d 'Per-user tokens: a TOML file of name = "sha256:…" lines (see `nexscoped relay hash-token`). A listed name needs its own token' -r -F
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l tls-cert -d 'PEM certificate chain: serve wss:// (with --tls-key)' -r -F
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l tls-key -d 'PEM private key for --tls-cert' -r -F
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l max-users -d 'Members per room (v1: 50)' -r
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l max-payload -d 'Largest frame in bytes; a larger one closes the connection with 4011' -r
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l max-file -d 'Largest file in bytes' -r
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l max-connections -d 'Open connections at once' -r
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l max-per-address -d 'Open connections from one IP address, more get HTTP 503; also bounds the handshakes one address may have pending to 64 (0: neither cap)' -r
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l max-per-user -d 'Connections of one user of the users file, over all rooms (0: no cap); more are closed with too_many_connections and 1013' -r
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l heartbeat-ms -d 'WebSocket ping interval in milliseconds; two missed pongs close with 4010' -r
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l transfer-timeout-ms -d 'Milliseconds from file-start to file-end before the sender is closed with 4014' -r
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l cluster -d 'Join a relay tier: the NATS servers (with JetStream) its nodes share, as nats://HOST:PORT[,nats://…]. Without it the relay is one process. [default: [relay] cluster in config.toml]' -r
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l node-id -d 'This node\'s name in the relay tier (1 to 32 of a-z A-Z 0-9 _ -), unique among its nodes. [default: [relay] node_id in config.toml]' -r
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l config -d 'Configuration file [default: $XDG_CONFIG_HOME/nexscope/config.toml]' -r -F
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -l log-level -d 'Log level [default: the config\'s log_level, else info]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -s h -l help -d 'Print help'
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -f -a "hash-token" -d 'Read a token on stdin and print its users-file value'
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and not __fish_seen_subcommand_from hash-token help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and __fish_seen_subcommand_from hash-token" -l config -d 'Configuration file [default: $XDG_CONFIG_HOME/nexscope/config.toml]' -r -F
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and __fish_seen_subcommand_from hash-token" -l log-level -d 'Log level [default: the config\'s log_level, else info]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and __fish_seen_subcommand_from hash-token" -s h -l help -d 'Print help'
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and __fish_seen_subcommand_from help" -f -a "hash-token" -d 'Read a token on stdin and print its users-file value'
complete -c nexscoped -n "__fish_nexscoped_using_subcommand relay; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nexscoped -n "__fish_nexscoped_using_subcommand help; and not __fish_seen_subcommand_from relay help" -f -a "relay" -d 'Run a relay server for a team (the WebSocket rooms agents talk in)'
complete -c nexscoped -n "__fish_nexscoped_using_subcommand help; and not __fish_seen_subcommand_from relay help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nexscoped -n "__fish_nexscoped_using_subcommand help; and __fish_seen_subcommand_from relay" -f -a "hash-token" -d 'Read a token on stdin and print its users-file value'
