# fish completion for kubectl-vm_storage (the kubectl vm-storage plugin run directly).
# Enable: kubectl-vm_storage completion fish | source
function __kubectl_vm_storage_complete
    set -l args (commandline -opc)
    set -e args[1]
    set -l cur (commandline -ct)
    set -l out (command kubectl-vm_storage __complete $args $cur 2>/dev/null)
    or return
    set -l directive (string replace -r '^:' '' -- $out[-1])
    string match -qr '^[0-9]+$' -- $directive; or set directive 0
    test (math "$directive % 2") -eq 1; and return
    # `--to=fa`: candidates are bare values; fish wants the whole token back.
    set -l prefix (string match -r -- '^-[^=]*=' $cur)
    set -l n 0
    for entry in $out
        test -n "$entry"; and not string match -q -- ':*' $entry; or continue
        printf '%s%s\n' "$prefix" "$entry"
        set n (math $n + 1)
    end
    if test $n -eq 0; and test (math "floor($directive / 4) % 2") -eq 0
        __fish_complete_path (string replace -r -- '^-[^=]*=' '' $cur)
    end
end
complete -c kubectl-vm_storage -f -a '(__kubectl_vm_storage_complete)'
