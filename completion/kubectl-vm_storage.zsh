#compdef kubectl-vm_storage
# zsh completion for kubectl-vm_storage (the kubectl vm-storage plugin run directly).
# Enable: source <(kubectl-vm_storage completion zsh)   (after compinit)
_kubectl_vm_storage() {
    local out directive entry
    local -a cands
    out=$(${words[1]} __complete "${(@)words[2,CURRENT]}" 2>/dev/null) || return 1
    directive=${${(f)out}[-1]#:}
    [[ $directive == <-> ]] || directive=0
    (( directive & 1 )) && return 1
    # `--to=fa<TAB>`: candidates are bare values, so complete after the '='.
    [[ ${words[CURRENT]} == -*=* ]] && compset -P '*='
    for entry in "${(@f)out}"; do
        [[ -z $entry || $entry == :* ]] && continue
        if [[ $entry == *$'\t'* ]]; then
            cands+=("${${entry%%$'\t'*}//:/\\:}:${entry#*$'\t'}")
        else
            cands+=("${entry//:/\\:}")
        fi
    done
    if (( ${#cands} )); then
        if (( directive & 2 )); then _describe -t values 'values' cands -S ''; else _describe -t values 'values' cands; fi
    elif (( (directive & 4) == 0 )); then
        _files
    fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _kubectl_vm_storage "$@"
else
    compdef _kubectl_vm_storage kubectl-vm_storage
fi
