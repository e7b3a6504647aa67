"""vm.go syncRunStrategy's start decision without a VMI and the stateChangeRequests bookkeeping (the
``start``/``stop`` subresources of tests/sim/virt_api.py add the requests)."""


def wants_start(st: dict, strategy: str) -> bool:
    """vm.go syncRunStrategy without a VMI: Always and Once start; RerunOnFailure on a start request or
    when status.runStrategy differs (shouldStartRerunOnFailure); Manual only on a Start stateChangeRequest
    (hasStartRequest: the ``start`` subresource adds one); Halted never (a start request there is turned
    into runStrategy Always by the controller, not modelled)."""
    start_request = ((st.get("stateChangeRequests") or [{}])[0]).get("action") == "Start"
    if strategy in ("Always", "Once"):
        return True
    if strategy == "RerunOnFailure":
        return start_request or st.get("runStrategy") != strategy
    if strategy == "Manual":
        return start_request
    return False


def trim_state_change_requests(st: dict, vmi) -> None:
    """vm.go isTrimFirstChangeRequestNeeded/popStateChangeRequest: a Start request is done once a VMI exists
    and is not final; a Stop request once there is no VMI (or another one)."""
    reqs = st.get("stateChangeRequests") or []
    if not reqs:
        return
    first, phase = reqs[0], ((vmi or {}).get("status") or {}).get("phase")
    done = (first.get("action") == "Start" and vmi is not None and phase not in ("Succeeded", "Failed")) or \
        (first.get("action") == "Stop" and (vmi is None or first.get("uid") != vmi["metadata"].get("uid")))
    if done:
        rest = reqs[1:]
        if rest:
            st["stateChangeRequests"] = rest
        else:
            st.pop("stateChangeRequests", None)
