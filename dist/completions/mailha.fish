# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mailha_global_optspecs
    string join \n config= h/help V/version
end

function __fish_mailha_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mailha_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mailha_using_subcommand
    set -l cmd (__fish_mailha_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mailha -n "__fish_mailha_needs_command" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_needs_command" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_needs_command" -s V -l version -d 'Print version'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "check" -d 'Parse and validate the configuration; print a one-line summary'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "render" -d 'Print the generated cluster configuration'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "setup" -d 'Bootstrap both nodes: corosync.conf, authkey, start the stack, apply'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "watch" -d 'Switch a service\'s deep checks off/on for the whole cluster, live'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "install" -d 'Install this binary as /usr/sbin/mailha with the agents\' symlinks'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "apply" -d 'Push mailha.toml to the running cluster: diff, crm_verify, one transaction'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "config" -d 'One config on both nodes: take the running config (`pull`)'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "status" -d 'Show who runs the mail, each resource\'s state and what needs attention'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "switchover" -d 'Move the mail to the other node and wait until SMTP answers there; nothing is left pinned (`--clear` removes what crm_resource left)'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "standby" -d 'Drain a node for patching: its mail moves to the other node first (refused when that node could not take it), then nothing runs there'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "online" -d 'Take a node out of standby: it can take the mail again (the mail stays where it runs)'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "maintenance" -d 'Maintenance of the cluster or one service: nothing started, stopped or monitored; `off` shows what Pacemaker will do first'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "cleanup" -d 'Forget recorded failures (fail counts, failed operations) without restarting what runs; says what it cleared'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "stop" -d 'Stop the whole mail stack in dependency order (services first, the lease last), waiting and reporting each step'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "start" -d 'Start the whole mail stack again (the lease first) and wait until SMTP answers on the VIP'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "history" -d 'What happened to the mail: failures, fencing, moves, as incidents with their cause and duration (Pacemaker\'s histories and the alert spool)'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "report" -d 'One bundle for support from both nodes (CIB, crm_mon, transition inputs, journal, lease, alerts, config, check --live), secrets scrubbed, 0600, with a manifest'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "destroy" -d 'Take the cluster down for good (the 2014 kit\'s `uninstall.sh YeS`): the mail stopped, both nodes out of the cluster, its keys and configuration removed; /etc/mailha and the mail\'s data kept'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "import-legacy" -d 'Convert the 2014 kit\'s ha_conf.ini into a mailha.toml (read as data, never run)'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "alert" -d 'Alert mail: test the channels, send what the spool holds'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "lease" -d 'The disk lease: this node\'s keeper daemon and its state'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "exporter" -d 'Serve Prometheus metrics of the cluster and of mailha, and a status page for a browser, on `[exporter] listen` (a read-only daemon; stays in the foreground)'
complete -c mailha -n "__fish_mailha_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailha -n "__fish_mailha_using_subcommand check" -l io-timeout -d 'Deadline for each device read or NFS call of --live' -r
complete -c mailha -n "__fish_mailha_using_subcommand check" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand check" -l live -d 'Also look at this node: the data devices are present and readable, hold the configured filesystem, ext4 has multi-mount protection (MMP), NFS servers answer. Exit 1 when something would stop the cluster from mounting; a missing MMP is a warning'
complete -c mailha -n "__fish_mailha_using_subcommand check" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand render; and not __fish_seen_subcommand_from cib corosync help" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand render; and not __fish_seen_subcommand_from cib corosync help" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand render; and not __fish_seen_subcommand_from cib corosync help" -f -a "cib" -d 'The CIB <configuration> section'
complete -c mailha -n "__fish_mailha_using_subcommand render; and not __fish_seen_subcommand_from cib corosync help" -f -a "corosync" -d 'corosync.conf'
complete -c mailha -n "__fish_mailha_using_subcommand render; and not __fish_seen_subcommand_from cib corosync help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailha -n "__fish_mailha_using_subcommand render; and __fish_seen_subcommand_from cib" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand render; and __fish_seen_subcommand_from cib" -l full -d 'Wrap it in a whole <cib> document (for crm_verify --xml-file)'
complete -c mailha -n "__fish_mailha_using_subcommand render; and __fish_seen_subcommand_from cib" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand render; and __fish_seen_subcommand_from corosync" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand render; and __fish_seen_subcommand_from corosync" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand render; and __fish_seen_subcommand_from help" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand render; and __fish_seen_subcommand_from help" -f -a "cib" -d 'The CIB <configuration> section'
complete -c mailha -n "__fish_mailha_using_subcommand render; and __fish_seen_subcommand_from help" -f -a "corosync" -d 'corosync.conf'
complete -c mailha -n "__fish_mailha_using_subcommand render; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailha -n "__fish_mailha_using_subcommand setup" -l ssh-option -d 'Extra ssh options, e.g. `-i KEY` or `-o UserKnownHostsFile=F` (repeatable)' -r
complete -c mailha -n "__fish_mailha_using_subcommand setup" -l wait -d 'How long to wait for both nodes to become members' -r
complete -c mailha -n "__fish_mailha_using_subcommand setup" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand setup" -l receive -d 'The peer\'s side, run by `mailha setup` over SSH: read the config and the key from stdin, write them, start the stack'
complete -c mailha -n "__fish_mailha_using_subcommand setup" -l new-key -d 'Make a new corosync authkey even if one exists'
complete -c mailha -n "__fish_mailha_using_subcommand setup" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand watch; and not __fish_seen_subcommand_from off on status help" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand watch; and not __fish_seen_subcommand_from off on status help" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand watch; and not __fish_seen_subcommand_from off on status help" -f -a "off" -d 'Only check that SERVICE is alive (its probe is skipped)'
complete -c mailha -n "__fish_mailha_using_subcommand watch; and not __fish_seen_subcommand_from off on status help" -f -a "on" -d 'Deep checks again for SERVICE'
complete -c mailha -n "__fish_mailha_using_subcommand watch; and not __fish_seen_subcommand_from off on status help" -f -a "status" -d 'Each service\'s watch state'
complete -c mailha -n "__fish_mailha_using_subcommand watch; and not __fish_seen_subcommand_from off on status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailha -n "__fish_mailha_using_subcommand watch; and __fish_seen_subcommand_from off" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand watch; and __fish_seen_subcommand_from off" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand watch; and __fish_seen_subcommand_from on" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand watch; and __fish_seen_subcommand_from on" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand watch; and __fish_seen_subcommand_from status" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand watch; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand watch; and __fish_seen_subcommand_from help" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand watch; and __fish_seen_subcommand_from help" -f -a "off" -d 'Only check that SERVICE is alive (its probe is skipped)'
complete -c mailha -n "__fish_mailha_using_subcommand watch; and __fish_seen_subcommand_from help" -f -a "on" -d 'Deep checks again for SERVICE'
complete -c mailha -n "__fish_mailha_using_subcommand watch; and __fish_seen_subcommand_from help" -f -a "status" -d 'Each service\'s watch state'
complete -c mailha -n "__fish_mailha_using_subcommand watch; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailha -n "__fish_mailha_using_subcommand install" -l root -d 'Install under this directory instead of / (for packaging)' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand install" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand install" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand apply" -l ssh-option -d 'Extra ssh options to reach the peer, e.g. `-i KEY` (repeatable)' -r
complete -c mailha -n "__fish_mailha_using_subcommand apply" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand apply" -l dry-run -d 'Show the diff and verify it (the peer checks the file too), but change nothing'
complete -c mailha -n "__fish_mailha_using_subcommand apply" -l force -d 'Apply even a file older than what runs (it reverts the newer generations; the diff shows what)'
complete -c mailha -n "__fish_mailha_using_subcommand apply" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand config; and not __fish_seen_subcommand_from pull help" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand config; and not __fish_seen_subcommand_from pull help" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand config; and not __fish_seen_subcommand_from pull help" -f -a "pull" -d 'Write the running config (what the cluster runs, byte for byte) to this node\'s mailha.toml, showing the diff first. From the CIB; secrets and the files the config names come from the peer when this node\'s own differ. Edits here the cluster never ran are kept as mailha.toml.unapplied'
complete -c mailha -n "__fish_mailha_using_subcommand config; and not __fish_seen_subcommand_from pull help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailha -n "__fish_mailha_using_subcommand config; and __fish_seen_subcommand_from pull" -l ssh-option -d 'Extra ssh options to reach the peer, e.g. `-i KEY` (repeatable)' -r
complete -c mailha -n "__fish_mailha_using_subcommand config; and __fish_seen_subcommand_from pull" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand config; and __fish_seen_subcommand_from pull" -l dry-run -d 'Show the diff; write nothing'
complete -c mailha -n "__fish_mailha_using_subcommand config; and __fish_seen_subcommand_from pull" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand config; and __fish_seen_subcommand_from help" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "pull" -d 'Write the running config (what the cluster runs, byte for byte) to this node\'s mailha.toml, showing the diff first. From the CIB; secrets and the files the config names come from the peer when this node\'s own differ. Edits here the cluster never ran are kept as mailha.toml.unapplied'
complete -c mailha -n "__fish_mailha_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailha -n "__fish_mailha_using_subcommand status" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand status" -l json -d 'Print JSON (schema in docs/status.md) instead of the summary'
complete -c mailha -n "__fish_mailha_using_subcommand status" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand switchover" -l to -d 'The node to move the mail to (default: the other node)' -r
complete -c mailha -n "__fish_mailha_using_subcommand switchover" -l wait -d 'How long to wait for SMTP to answer on the VIP after the move (default 120s); the move\'s constraint is removed when it does, or when this runs out' -r
complete -c mailha -n "__fish_mailha_using_subcommand switchover" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand switchover" -l dry-run -d 'Print what would change; change nothing'
complete -c mailha -n "__fish_mailha_using_subcommand switchover" -l json -d 'Print JSON instead of text'
complete -c mailha -n "__fish_mailha_using_subcommand switchover" -l clear -d 'Remove the constraints `crm_resource --move/--ban` left (cli-prefer-*, cli-ban-*), saying which'
complete -c mailha -n "__fish_mailha_using_subcommand switchover" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand standby" -l wait -d 'How long to wait for the change to be done (default 120s)' -r
complete -c mailha -n "__fish_mailha_using_subcommand standby" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand standby" -l dry-run -d 'Print what would change; change nothing'
complete -c mailha -n "__fish_mailha_using_subcommand standby" -l json -d 'Print JSON instead of text'
complete -c mailha -n "__fish_mailha_using_subcommand standby" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand online" -l wait -d 'How long to wait for the change to be done (default 120s)' -r
complete -c mailha -n "__fish_mailha_using_subcommand online" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand online" -l dry-run -d 'Print what would change; change nothing'
complete -c mailha -n "__fish_mailha_using_subcommand online" -l json -d 'Print JSON instead of text'
complete -c mailha -n "__fish_mailha_using_subcommand online" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand maintenance" -l wait -d 'How long to wait for the change to be done (default 120s)' -r
complete -c mailha -n "__fish_mailha_using_subcommand maintenance" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand maintenance" -l dry-run -d 'Print what would change; change nothing'
complete -c mailha -n "__fish_mailha_using_subcommand maintenance" -l json -d 'Print JSON instead of text'
complete -c mailha -n "__fish_mailha_using_subcommand maintenance" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand cleanup" -l node -d 'Only on this node' -r
complete -c mailha -n "__fish_mailha_using_subcommand cleanup" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand cleanup" -l dry-run -d 'Print what would be forgotten; change nothing'
complete -c mailha -n "__fish_mailha_using_subcommand cleanup" -l json -d 'Print JSON instead of text'
complete -c mailha -n "__fish_mailha_using_subcommand cleanup" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand stop" -l wait -d 'How long to wait for the change to be done (default 120s)' -r
complete -c mailha -n "__fish_mailha_using_subcommand stop" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand stop" -l dry-run -d 'Print what would change; change nothing'
complete -c mailha -n "__fish_mailha_using_subcommand stop" -l json -d 'Print JSON instead of text'
complete -c mailha -n "__fish_mailha_using_subcommand stop" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand start" -l wait -d 'How long to wait for the change to be done (default 120s)' -r
complete -c mailha -n "__fish_mailha_using_subcommand start" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand start" -l dry-run -d 'Print what would change; change nothing'
complete -c mailha -n "__fish_mailha_using_subcommand start" -l json -d 'Print JSON instead of text'
complete -c mailha -n "__fish_mailha_using_subcommand start" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand history" -l since -d 'How far back (e.g. 2h, 7d)' -r
complete -c mailha -n "__fish_mailha_using_subcommand history" -l spool -d 'The alert spool to read (default /var/lib/mailha/spool)' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand history" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand history" -l json -d 'Print JSON instead of text'
complete -c mailha -n "__fish_mailha_using_subcommand history" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand report" -l since -d 'The window: this long back from now (default 2h)' -r
complete -c mailha -n "__fish_mailha_using_subcommand report" -l from -d 'The window\'s start (UTC, e.g. "2026-12-05 14:00:00")' -r
complete -c mailha -n "__fish_mailha_using_subcommand report" -l to -d 'The window\'s end (UTC)' -r
complete -c mailha -n "__fish_mailha_using_subcommand report" -s o -l output -d 'The bundle to write (a .tar.gz, mode 0600)' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand report" -l ssh-option -d 'Extra ssh options, e.g. `-i KEY` (repeatable)' -r
complete -c mailha -n "__fish_mailha_using_subcommand report" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand report" -l no-peer -d 'This node only (the peer not asked)'
complete -c mailha -n "__fish_mailha_using_subcommand report" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand destroy" -l ssh-option -d 'Extra ssh options, e.g. `-i KEY` (repeatable)' -r
complete -c mailha -n "__fish_mailha_using_subcommand destroy" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand destroy" -l yes-really-destroy -d 'Really: stop the mail, take both nodes out of the cluster, remove the cluster\'s configuration and keys (never the mail\'s data)'
complete -c mailha -n "__fish_mailha_using_subcommand destroy" -l dry-run -d 'Print what would be done; change nothing'
complete -c mailha -n "__fish_mailha_using_subcommand destroy" -l local -d 'This node only (what the node running `destroy` asks its peer over SSH, after the mail stack was stopped)'
complete -c mailha -n "__fish_mailha_using_subcommand destroy" -l json -d 'Print JSON instead of text'
complete -c mailha -n "__fish_mailha_using_subcommand destroy" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand import-legacy" -s o -l output -d 'Where to write the new configuration; created with mode 0600, as it may hold the SMTP password' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand import-legacy" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand import-legacy" -l force -d 'Replace OUTPUT if it already exists'
complete -c mailha -n "__fish_mailha_using_subcommand import-legacy" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand alert; and not __fish_seen_subcommand_from test send-pending run help" -l spool -d 'The spool directory' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand alert; and not __fish_seen_subcommand_from test send-pending run help" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand alert; and not __fish_seen_subcommand_from test send-pending run help" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand alert; and not __fish_seen_subcommand_from test send-pending run help" -f -a "test" -d 'Send a test incident through every configured channel; report each'
complete -c mailha -n "__fish_mailha_using_subcommand alert; and not __fish_seen_subcommand_from test send-pending run help" -f -a "send-pending" -d 'One pass: mail every incident whose batch window is over, retry the ones a channel has not delivered yet; exit 1 if any channel failed'
complete -c mailha -n "__fish_mailha_using_subcommand alert; and not __fish_seen_subcommand_from test send-pending run help" -f -a "run" -d 'Keep sending: a pass every second, failed channels retried with backoff (5 s doubling up to 5 min). Runs until killed. This is what `ocf:mailha:sender` runs on every node'
complete -c mailha -n "__fish_mailha_using_subcommand alert; and not __fish_seen_subcommand_from test send-pending run help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from test" -l spool -d 'The spool directory' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from test" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from send-pending" -l spool -d 'The spool directory' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from send-pending" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from send-pending" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from run" -l pid-file -d 'Write this process\'s pid here (atomically) once running' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from run" -l log -d 'Append stdout and stderr to this file (a daemon has no terminal)' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from run" -l spool -d 'The spool directory' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from run" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from help" -l spool -d 'The spool directory' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from help" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from help" -f -a "test" -d 'Send a test incident through every configured channel; report each'
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from help" -f -a "send-pending" -d 'One pass: mail every incident whose batch window is over, retry the ones a channel has not delivered yet; exit 1 if any channel failed'
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from help" -f -a "run" -d 'Keep sending: a pass every second, failed channels retried with backoff (5 s doubling up to 5 min). Runs until killed. This is what `ocf:mailha:sender` runs on every node'
complete -c mailha -n "__fish_mailha_using_subcommand alert; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and not __fish_seen_subcommand_from keeper init status acquire release help" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand lease; and not __fish_seen_subcommand_from keeper init status acquire release help" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and not __fish_seen_subcommand_from keeper init status acquire release help" -f -a "keeper" -d 'Run this node\'s lease keeper (a daemon; stays in the foreground)'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and not __fish_seen_subcommand_from keeper init status acquire release help" -f -a "init" -d 'Make the lease ready before the first keeper runs: on NFS, mount the export and create the lease file; write the header if blank. Idempotent; run it on one node'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and not __fish_seen_subcommand_from keeper init status acquire release help" -f -a "status" -d 'The keeper\'s state as JSON'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and not __fish_seen_subcommand_from keeper init status acquire release help" -f -a "acquire" -d 'Ask the keeper to take the lease (returns at once; `status` says when it holds). The cluster does this through ocf:mailha:lease; this is for trying a keeper by hand'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and not __fish_seen_subcommand_from keeper init status acquire release help" -f -a "release" -d 'Ask the keeper to give the lease back'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and not __fish_seen_subcommand_from keeper init status acquire release help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from keeper" -l node -d 'This node\'s name in [cluster.nodes] (default: the node whose name is the host name, short or FQDN, else the one whose address is bound here)' -r
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from keeper" -l socket -d 'Abstract socket name of the control socket' -r
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from keeper" -l reset -d 'What follows the ack of a fence request: reboot this machine at once (the watchdog if that fails), let the watchdog reset it, or none (the node stays up, fenced, until restarted: only with --keep-stack, for a keeper tried on a machine that is not its to reset)' -r -f -a "reboot\t'reboot(2) at once after the ack (RB_AUTOBOOT, no sync: the shared data is already released); the watchdog if the call fails'
watchdog\t'Stop petting the watchdog after the ack: reset within its timeout'
none\t'No reset: the node stays up, fenced, holding nothing until someone restarts it. Only for keepers tried where the machine is not the keeper\'s to reset (the tests on a host)'"
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from keeper" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from keeper" -l keep-stack -d 'Do not kill the cluster stack when fencing this node (for a keeper tried on a machine whose stack serves something else)'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from keeper" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from init" -l node -d 'This node\'s name in [cluster.nodes] (default: the node whose name is the host name, short or FQDN, else the one whose address is bound here)' -r
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from init" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from init" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from status" -l socket -r
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from status" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from acquire" -l socket -r
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from acquire" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from acquire" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from release" -l socket -r
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from release" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from release" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from help" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from help" -f -a "keeper" -d 'Run this node\'s lease keeper (a daemon; stays in the foreground)'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from help" -f -a "init" -d 'Make the lease ready before the first keeper runs: on NFS, mount the export and create the lease file; write the header if blank. Idempotent; run it on one node'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from help" -f -a "status" -d 'The keeper\'s state as JSON'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from help" -f -a "acquire" -d 'Ask the keeper to take the lease (returns at once; `status` says when it holds). The cluster does this through ocf:mailha:lease; this is for trying a keeper by hand'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from help" -f -a "release" -d 'Ask the keeper to give the lease back'
complete -c mailha -n "__fish_mailha_using_subcommand lease; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailha -n "__fish_mailha_using_subcommand exporter" -l spool -d 'The alert spool whose depth is reported' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand exporter" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand exporter" -s h -l help -d 'Print help'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "check" -d 'Parse and validate the configuration; print a one-line summary'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "render" -d 'Print the generated cluster configuration'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "setup" -d 'Bootstrap both nodes: corosync.conf, authkey, start the stack, apply'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "watch" -d 'Switch a service\'s deep checks off/on for the whole cluster, live'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "install" -d 'Install this binary as /usr/sbin/mailha with the agents\' symlinks'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "apply" -d 'Push mailha.toml to the running cluster: diff, crm_verify, one transaction'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "config" -d 'One config on both nodes: take the running config (`pull`)'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "status" -d 'Show who runs the mail, each resource\'s state and what needs attention'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "switchover" -d 'Move the mail to the other node and wait until SMTP answers there; nothing is left pinned (`--clear` removes what crm_resource left)'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "standby" -d 'Drain a node for patching: its mail moves to the other node first (refused when that node could not take it), then nothing runs there'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "online" -d 'Take a node out of standby: it can take the mail again (the mail stays where it runs)'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "maintenance" -d 'Maintenance of the cluster or one service: nothing started, stopped or monitored; `off` shows what Pacemaker will do first'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "cleanup" -d 'Forget recorded failures (fail counts, failed operations) without restarting what runs; says what it cleared'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "stop" -d 'Stop the whole mail stack in dependency order (services first, the lease last), waiting and reporting each step'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "start" -d 'Start the whole mail stack again (the lease first) and wait until SMTP answers on the VIP'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "history" -d 'What happened to the mail: failures, fencing, moves, as incidents with their cause and duration (Pacemaker\'s histories and the alert spool)'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "report" -d 'One bundle for support from both nodes (CIB, crm_mon, transition inputs, journal, lease, alerts, config, check --live), secrets scrubbed, 0600, with a manifest'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "destroy" -d 'Take the cluster down for good (the 2014 kit\'s `uninstall.sh YeS`): the mail stopped, both nodes out of the cluster, its keys and configuration removed; /etc/mailha and the mail\'s data kept'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "import-legacy" -d 'Convert the 2014 kit\'s ha_conf.ini into a mailha.toml (read as data, never run)'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "alert" -d 'Alert mail: test the channels, send what the spool holds'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "lease" -d 'The disk lease: this node\'s keeper daemon and its state'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "exporter" -d 'Serve Prometheus metrics of the cluster and of mailha, and a status page for a browser, on `[exporter] listen` (a read-only daemon; stays in the foreground)'
complete -c mailha -n "__fish_mailha_using_subcommand help; and not __fish_seen_subcommand_from check render setup watch install apply config status switchover standby online maintenance cleanup stop start history report destroy import-legacy alert lease exporter help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from check" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from render" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from render" -f -a "cib" -d 'The CIB <configuration> section'
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from render" -f -a "corosync" -d 'corosync.conf'
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from setup" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from watch" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from watch" -f -a "off" -d 'Only check that SERVICE is alive (its probe is skipped)'
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from watch" -f -a "on" -d 'Deep checks again for SERVICE'
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from watch" -f -a "status" -d 'Each service\'s watch state'
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from install" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from apply" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from config" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "pull" -d 'Write the running config (what the cluster runs, byte for byte) to this node\'s mailha.toml, showing the diff first. From the CIB; secrets and the files the config names come from the peer when this node\'s own differ. Edits here the cluster never ran are kept as mailha.toml.unapplied'
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from status" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from switchover" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from standby" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from online" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from maintenance" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from cleanup" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from stop" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from start" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from history" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from report" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from destroy" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from import-legacy" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from alert" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from alert" -f -a "test" -d 'Send a test incident through every configured channel; report each'
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from alert" -f -a "send-pending" -d 'One pass: mail every incident whose batch window is over, retry the ones a channel has not delivered yet; exit 1 if any channel failed'
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from alert" -f -a "run" -d 'Keep sending: a pass every second, failed channels retried with backoff (5 s doubling up to 5 min). Runs until killed. This is what `ocf:mailha:sender` runs on every node'
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from lease" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from lease" -f -a "keeper" -d 'Run this node\'s lease keeper (a daemon; stays in the foreground)'
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from lease" -f -a "init" -d 'Make the lease ready before the first keeper runs: on NFS, mount the export and create the lease file; write the header if blank. Idempotent; run it on one node'
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from lease" -f -a "status" -d 'The keeper\'s state as JSON'
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from lease" -f -a "acquire" -d 'Ask the keeper to take the lease (returns at once; `status` says when it holds). The cluster does this through ocf:mailha:lease; this is for trying a keeper by hand'
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from lease" -f -a "release" -d 'Ask the keeper to give the lease back'
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from exporter" -l config -d 'The configuration file' -r -F
complete -c mailha -n "__fish_mailha_using_subcommand help; and __fish_seen_subcommand_from help" -l config -d 'The configuration file' -r -F
