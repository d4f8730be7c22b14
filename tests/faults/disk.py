"""A disk that fills up under the archive, for the ENOSPC tests.

Where a tmpfs can be mounted (root, a container that allows it), the archive root lives on a
small real tmpfs and the disk fills for real: a filler file takes the free space, so the
archive's own write of a temporary file fails with ENOSPC, and deleting the filler frees it.
Elsewhere (a CI runner without mount rights) the fault plugin injects the error instead: the
archive module's `os.replace` raises OSError(ENOSPC) while a flag file exists (plugin:
`enospc:<n>`). `METERLAKE_FAULTS_DISK=tmpfs|inject` forces one way (default: tmpfs when it
mounts). Either way the plugin notes every write refused for ENOSPC (`refused` markers).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
import subprocess
from typing import Any

from .harness import HomeAssistantProcess

DISK_ENV = "METERLAKE_FAULTS_DISK"
DISK_FULL = "meterlake_faults.disk_full"  # the plugin's flag file, in the config dir
TMPFS_SIZE = "16m"
CHUNK = 1 << 20
# Free space left when the disk fills during a backfill: a partition or two, not all of them.
BACKFILL_ROOM = 16 * 1024


class InjectedDisk:
    """A full disk simulated by the plugin: archive writes fail while the flag file exists."""

    kind = "injected"

    def __init__(self) -> None:
        self._flag: Path | None = None

    def options(self) -> dict[str, Any]:
        """Entry options the disk needs (none: the archive stays in the config dir)."""
        return {}

    def attach(self, ha: HomeAssistantProcess) -> None:
        """The Home Assistant whose archive this disk holds."""
        self._flag = ha.config / DISK_FULL

    def fault(self, free_after: int | None = None) -> str:
        """The plugin fault for a disk the test fills, freed by the test or after `free_after`
        refused writes."""
        return "enospc:0" if free_after is None else f"enospc:0:{free_after}"

    def fault_during_backfill(self) -> str:
        """The plugin fault for a disk that fills at the second archive write of the process.

        The first consumption partition of the backfill is written, the rest is refused.
        """
        return "enospc:2"

    def fill(self) -> None:
        """From now on every archive write fails with ENOSPC."""
        assert self._flag is not None, "attach() first"
        self._flag.touch()

    def free(self) -> None:
        """Writes succeed again."""
        assert self._flag is not None, "attach() first"
        self._flag.unlink(missing_ok=True)

    def close(self) -> None:
        """Nothing to undo."""


class TmpfsDisk:
    """The archive on a small tmpfs that a filler file fills for real."""

    kind = "tmpfs"

    def __init__(self, mount: Path) -> None:
        self.mount = mount
        self._filler = mount / "filler"
        self._flag: Path | None = None
        self._mounted = False

    def try_mount(self) -> str | None:
        """Mount the tmpfs; the reason when it cannot be."""
        self.mount.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(self.mount)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError as err:
            return str(err)
        if done.returncode != 0:
            return (done.stderr or done.stdout).strip() or f"mount exited {done.returncode}"
        self._mounted = True
        return None

    def options(self) -> dict[str, Any]:
        """The archive root on the tmpfs."""
        return {"archive_root": str(self.mount / "meterlake")}

    def attach(self, ha: HomeAssistantProcess) -> None:
        """The Home Assistant whose archive this disk holds (the option points here)."""
        self._flag = ha.config / DISK_FULL

    def fault(self, free_after: int | None = None) -> str:
        """The plugin notes the writes the real disk refuses; after `free_after` of them it
        deletes the filler (the flag file names it)."""
        return "enospc:watch" if free_after is None else f"enospc:watch:{free_after}"

    def fault_during_backfill(self) -> str:
        """Fill the disk but for BACKFILL_ROOM before the start: the backfill runs out of space."""
        self._fill(leave=BACKFILL_ROOM)
        return "enospc:watch"

    def fill(self) -> None:
        """Take every free byte; the flag file names the filler for the plugin."""
        self._fill(leave=0)
        assert self._flag is not None, "attach() first"
        self._flag.write_text(str(self._filler), encoding="utf-8")

    def _fill(self, *, leave: int) -> None:
        stats = os.statvfs(self.mount)
        room = stats.f_bavail * stats.f_frsize - leave
        block = b"\0" * CHUNK
        with self._filler.open("ab") as out:
            try:
                while room > 0:
                    out.write(block[: min(CHUNK, room)])
                    out.flush()
                    room -= min(CHUNK, room)
                os.fsync(out.fileno())
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise

    def free(self) -> None:
        """Delete the filler (and the flag)."""
        self._filler.unlink(missing_ok=True)
        if self._flag is not None:
            self._flag.unlink(missing_ok=True)

    def close(self) -> None:
        """Unmount (lazily if something still holds it)."""
        if not self._mounted:
            return
        done = subprocess.run(
            ["umount", str(self.mount)], capture_output=True, timeout=30, check=False
        )
        if done.returncode != 0:
            subprocess.run(
                ["umount", "-l", str(self.mount)], capture_output=True, timeout=30, check=False
            )
        self._mounted = False


type FullDisk = InjectedDisk | TmpfsDisk


def make_disk(base: Path) -> tuple[FullDisk, str]:
    """A tmpfs disk under `base` when one mounts (or METERLAKE_FAULTS_DISK says so), else one
    injected by the plugin; with why that kind was chosen."""
    wanted = os.environ.get(DISK_ENV, "auto").strip().lower()
    if wanted == "inject":
        return InjectedDisk(), f"{DISK_ENV}=inject"
    disk = TmpfsDisk(base / "disk")
    reason = disk.try_mount()
    if reason is None:
        return disk, f"tmpfs of {TMPFS_SIZE} at {disk.mount}"
    if wanted == "tmpfs":
        raise RuntimeError(f"{DISK_ENV}=tmpfs but no tmpfs mounts: {reason}")
    return InjectedDisk(), f"no tmpfs ({reason}): injected ENOSPC"
