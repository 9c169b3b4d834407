"""wasi-testsuite runtime adapter for `wasm-runtime` (this repository's CLI).

`cargo xtask wasi-testsuite --runner` passes it to the suite's own test
runner (`./run-tests --runtime-adapter THIS_FILE`) with `WASM_RUNTIME` set to
the CLI binary and `WASM_RUNTIME_POLICY` to a policy file that admits the
limits below. Every test runs under those limits: the runtime has no
unlimited mode.
"""

import os
import shlex
import subprocess
from typing import Dict, List, Optional, Tuple

WASM_RUNTIME = shlex.split(os.getenv("WASM_RUNTIME", "wasm-runtime"))
POLICY = os.getenv("WASM_RUNTIME_POLICY")
# A Rust test needs about 1.5 MiB before its first allocation; the widest
# filesystem tests finish in well under a second.
# The entry quota is the policy's most (p1's `fd_readdir` makes 1,000 files).
LIMITS = ["--memory", "64MiB", "--fuel", "10000000000", "--timeout", "20s", "--dir-max-entries", "10000"]


def get_name() -> str:
    return "wasm-runtime"


def get_version() -> str:
    # The CLI prints no --version yet: the workspace's version.
    try:
        result = subprocess.run(WASM_RUNTIME + ["--version"], encoding="UTF-8", capture_output=True, check=True)
        return result.stdout.split()[-1]
    except (subprocess.CalledProcessError, OSError, IndexError):
        return "0.1.0"


def get_wasi_versions() -> List[str]:
    return ["wasm32-wasip1", "wasm32-wasip3"]


def get_wasi_worlds() -> List[str]:
    return ["wasi:cli/command", "wasi:http/service"]


def compute_argv(test_path: str,
                 args_env_root: Tuple[List[str], Dict[str, str], Optional[str]],
                 proposals: List[str],
                 wasi_world: str,
                 wasi_version: str) -> List[str]:
    args, env, root = args_env_root
    served = wasi_world == "wasi:http/service"
    argv = WASM_RUNTIME + (["serve", "--addr", "127.0.0.1:0"] if served else ["run"])
    argv += LIMITS
    # The runner writes the tests' stdin itself.
    argv += ["--stdin", "inherit"]
    if "http" in proposals:
        # `wasi:http` is linked under an HTTP grant, as in p2: the servers
        # the runner started for the test (named in HTTP_SERVER_* variables),
        # or an origin nothing listens on.
        servers = [value for key, value in env.items() if key.startswith("HTTP_SERVER_")]
        for origin in servers or ["127.0.0.1:9"]:
            argv += ["--allow-http", f"http://{origin}"]
    # Every test may use the network on loopback only, any port: connecting,
    # binding and UDP alike. (Not only those whose config names the
    # `sockets` proposal: two of the suite's sockets tests have no config.)
    for loopback in ["127.0.0.1:*", "[::1]:*"]:
        argv += ["--allow-tcp", loopback, "--allow-tcp-bind", loopback, "--allow-udp", loopback]
    if POLICY:
        argv += ["--policy", POLICY]
    for key, value in env.items():
        argv += ["--env", f"{key}={value}"]
    if root:
        _remove_leftover_symlinks(root)
        argv += ["--dir", f"{root}::/"]
    argv += [test_path]
    if not served:
        argv += ["--"] + args
    return argv


def _remove_leftover_symlinks(root: str) -> None:
    """Removes the `*.cleanup` symlinks an earlier test left in `root`.

    The runner removes a test's `*.cleanup` files and directories after it,
    but skips symlinks (following one into `rmtree` could delete what it
    points to), so `filesystem-hard-links`' `parent.cleanup -> ..` would
    outlive it and show in `filesystem-read-directory`'s listing whenever
    the directory's order runs the one before the other. Unlinking a symlink
    never follows it.
    """
    for entry in os.scandir(root):
        if entry.name.endswith(".cleanup") and entry.is_symlink():
            os.unlink(entry.path)
