"""Run in every grading kernel before a submission's first cell (scripts/gradebook.py passes it to
the kernel as `--IPKernelApp.exec_files`).

A submission may write, rename and delete only inside its own folder (the kernel's working
directory) and its scratch home; it may not start programs, load native libraries, open network
connections, signal other processes or walk the interpreter's objects. An audit hook (PEP 578)
refuses each with a PermissionError that says what was refused, and a hook cannot be removed once
installed. The libraries the course needs load their native code first.

What it is not: a security boundary against code written to escape it. PEP 578 says so of audit
hooks: C code raises no event (sqlite3 opens its files in C, `_posixsubprocess.fork_exec` starts
programs unseen), and a descriptor opened on a directory lets `os.open(name, dir_fd=...)` reach past
the check. It stops a submission that deletes or overwrites files elsewhere by mistake or by a
plain call, and one that shells out. The boundary is bubblewrap, where the machine has it
(scripts/grading.py): the kernel then sees the machine read-only but for its own folder and home,
and sees neither the hidden tests nor the other students nor any process outside.
"""


def _close_the_sandbox():
    import os
    import sys

    import matplotlib.pyplot  # noqa: F401  native code and font cache, loaded before the door closes
    import torch  # noqa: F401

    import fwdlib.course.checks  # noqa: F401
    import fwdlib.meters  # noqa: F401

    roots = tuple(os.path.realpath(p) for p in (os.getcwd(), os.environ["HOME"]))
    writes = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    # event: (positions of its paths, position of its dir_fd or None)
    paths = {"os.remove": ((0,), 1), "os.rmdir": ((0,), 1), "os.mkdir": ((0,), 2), "os.rename": ((0, 1), 2),
             "os.chmod": ((0,), 2), "os.chown": ((0,), 3), "os.truncate": ((0,), None), "os.utime": ((0,), 3),
             "os.link": ((0, 1), 2), "os.symlink": ((0, 1), 2), "shutil.rmtree": ((0,), None),
             "shutil.copyfile": ((1,), None), "shutil.move": ((0, 1), None)}
    refused = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
               "pty.spawn", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "socket.connect", "socket.bind",
               "socket.sendto", "sys.addaudithook", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
               "signal.pthread_kill", "os.setuid", "os.chroot"}

    def inside(path, dir_fd=None) -> bool:
        if isinstance(path, int) or path is None:        # a descriptor: opened under these rules
            return True
        path = os.fsdecode(path)
        if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(path):     # -1: no dir_fd
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        real = os.path.realpath(path)
        return real == "/dev/null" or any(real == r or real.startswith(r + os.sep) for r in roots)

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            if (flags or 0) & writes or (mode and any(c in mode for c in "wax+")):
                if not inside(path):
                    raise PermissionError(f"grading sandbox: writing {path} is outside this submission's folder")
        elif event in paths:
            where, fd_at = paths[event]
            dir_fd = args[fd_at] if fd_at is not None and fd_at < len(args) else None
            for i in where:
                if i < len(args) and not inside(args[i], dir_fd):
                    raise PermissionError(f"grading sandbox: {event} on {args[i]} is outside this submission's folder")
        elif event == "os.kill":
            if args[0] != os.getpid():
                raise PermissionError("grading sandbox: a submission may not signal other processes")
        elif event == "os.killpg":
            raise PermissionError("grading sandbox: a submission may not signal other processes")
        elif event in refused:
            raise PermissionError(f"grading sandbox: {event} is not allowed while grading")

    sys.addaudithook(hook)


_close_the_sandbox()
del _close_the_sandbox
