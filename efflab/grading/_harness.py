# Kernel-side code the grader's child appends to a submission: it runs in the STUDENT's kernel, so nothing here is
# trusted. It calls the student's functions on the hidden inputs and saves what they return as plain arrays; the
# grader compares them with the expected values in its own process. A submission that tampers with this code can only
# change its own answers, which it could do anyway. Only the standard library and numpy are used. Not imported by efflab.


def __efflab_harness(plan_path):
    import json
    import signal

    import numpy as np

    class _Late(BaseException):  # BaseException: a student's `except Exception` cannot swallow the time limit
        pass

    def _alarm(signum, frame):
        raise _Late()

    with open(plan_path, encoding="utf-8") as handle:
        plan = json.load(handle)
    inputs = np.load(plan["inputs"], allow_pickle=False)
    namespace = globals()
    outputs, report = {}, {}
    for q in plan["questions"]:
        statuses = []
        target = namespace.get(q["name"], Ellipsis)
        for case in q["cases"]:
            key = case["key"]  # every key comes from the plan (efflab.grading.grade.plan_key): none is built here
            try:
                if q["name"] not in namespace:
                    raise NameError(f"{q['name']} is not defined")
                if q["kind"] == "function":
                    if not callable(target):
                        raise TypeError(f"{q['name']} is not a function")
                    args = [
                        inputs[k].item() if scalar else inputs[k]
                        for k, scalar in zip(case["args"], case["scalar"], strict=True)
                    ]
                    try:
                        signal.signal(signal.SIGALRM, _alarm)
                        signal.setitimer(signal.ITIMER_REAL, float(q["time_limit_s"]))
                    except ValueError:  # not the main thread: the grader's wall-clock limit still applies
                        pass
                    try:
                        value = target(*args)
                    finally:
                        signal.setitimer(signal.ITIMER_REAL, 0)
                else:
                    value = target
                # kind "derived": bring back the recorded measurements too, under the plan's data_key for each
                for data_name, data_key in zip(q.get("data", []), q.get("data_keys", []), strict=True):
                    if data_name not in namespace:
                        raise NameError(f"{data_name} (the recorded data) is not defined")
                    recorded = np.asarray(namespace[data_name])
                    if recorded.dtype.kind not in "biuf" or recorded.size > plan["max_elements"]:
                        raise TypeError(f"{data_name} must be an array of at most {plan['max_elements']} numbers")
                    outputs[data_key] = recorded
                if value is Ellipsis or value is None:
                    raise NotImplementedError("no answer")
                array = np.asarray(value)
                if array.dtype.kind not in "biufU":
                    raise TypeError(f"returned {type(value).__name__}, not numbers or text")
                if array.size > plan["max_elements"]:
                    raise ValueError(f"returned {array.size} elements (at most {plan['max_elements']})")
                outputs[key] = array
                statuses.append("ok")
            except NotImplementedError:
                statuses.append("not attempted")
            except _Late:
                statuses.append(f"took longer than {q['time_limit_s']} s")
            except MemoryError:
                statuses.append("MemoryError")
            except BaseException as exc:  # SystemExit, KeyboardInterrupt and the student's own bugs alike
                statuses.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        report[q["id"]] = statuses
    try:  # the kernel's peak address space, for the grader's resource figures (informational, never scored)
        with open("/proc/self/status", encoding="ascii") as handle:
            peak = [line.split()[1] for line in handle if line.startswith("VmPeak:")]
        report["_vm_peak_kb"] = int(peak[0]) if peak else None
    except (OSError, ValueError):
        pass
    np.savez(plan["outputs"], **outputs)
    with open(plan["report"], "w", encoding="utf-8") as handle:
        json.dump(report, handle)


if __name__ == "__main__":  # true in a kernel cell; false when pytest imports this module
    __efflab_harness("plan.json")
