"""What the dependency locks in requirements/ were made from, and whether they still fit.

scripts/lock writes a fingerprint of pyproject.toml's dependency declarations into each
lock; tests/runtime/test_lock.py recomputes it, so a dependency changed without re-locking fails
with the command to run. Standard library only: it runs before anything is installed.

    python scripts/lockinfo.py fingerprint | build-requirements | check
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOCKS = ("requirements/runtime.txt", "requirements/dev.txt")
_FINGERPRINT_LINE = re.compile(r"^# pyproject-fingerprint: (?P<value>[0-9a-f]{64})$", re.M)


def dependency_declarations(pyproject: Path = REPO / "pyproject.toml") -> dict[str, object]:
    """Everything in pyproject.toml that decides what the locks contain."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data.get("project", {})
    return {
        "requires-python": project.get("requires-python"),
        "dependencies": sorted(project.get("dependencies", [])),
        "optional-dependencies": {
            extra: sorted(reqs)
            for extra, reqs in sorted(project.get("optional-dependencies", {}).items())
        },
        "build-system": sorted(data.get("build-system", {}).get("requires", [])),
    }


def fingerprint(pyproject: Path = REPO / "pyproject.toml") -> str:
    canonical = json.dumps(dependency_declarations(pyproject), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def lock_fingerprint(lock: Path) -> str | None:
    match = _FINGERPRINT_LINE.search(lock.read_text(encoding="utf-8"))
    return match.group("value") if match else None


def stale_locks(repo: Path = REPO) -> list[str]:
    """The locks that were not made from pyproject.toml's current declarations."""
    wanted = fingerprint(repo / "pyproject.toml")
    stale = []
    for name in LOCKS:
        path = repo / name
        if not path.exists() or lock_fingerprint(path) != wanted:
            stale.append(name)
    return stale


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "fingerprint":
        print(fingerprint())
    elif command == "build-requirements":
        print("\n".join(dependency_declarations()["build-system"]))  # type: ignore[arg-type]
    elif command == "check":
        stale = stale_locks()
        if stale:
            print(
                f"lock: {', '.join(stale)} not made from pyproject.toml's current "
                "dependencies; run scripts/lock and commit the result",
                file=sys.stderr,
            )
            return 1
        print("lock: up to date")
    else:
        print("usage: lockinfo.py fingerprint | build-requirements | check", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
