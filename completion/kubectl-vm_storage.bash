# bash completion for kubectl-vm_storage (the kubectl vm-storage plugin run directly).
# Enable: source <(kubectl-vm_storage completion bash)
# For `kubectl vm-storage <TAB>` use kubectl's own completion plus `kubectl vm-storage completion install`.
__kubectl_vm_storage_complete() {
    # Split the line ourselves: COMP_WORDS breaks `--to=fast` at '=' (COMP_WORDBREAKS).
    local line=${COMP_LINE:0:COMP_POINT} out directive entry
    local -a words
    read -ra words <<< "$line"
    [[ $line =~ [[:space:]]$ || ${#words[@]} -le 1 ]] && words+=("")
    out=$("${words[0]}" __complete "${words[@]:1}" 2>/dev/null) || return 0
    directive=${out##*$'\n'}
    directive=${directive#:}
    [[ $directive =~ ^[0-9]+$ ]] || directive=0
    COMPREPLY=()
    (( directive & 1 )) && return 0
    while IFS= read -r entry; do
        [[ -z $entry || $entry == :* ]] && continue
        COMPREPLY+=("${entry%%$'\t'*}")
    done <<< "$out"
    (( directive & 2 )) && compopt -o nospace 2>/dev/null
    if (( ${#COMPREPLY[@]} == 0 && (directive & 4) == 0 )); then
        compopt -o default 2>/dev/null
    fi
    return 0
}
complete -F __kubectl_vm_storage_complete kubectl-vm_storage
