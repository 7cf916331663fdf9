"""Ask Tk to deliver every pointer-motion event instead of merging bursts into the last one.

Tk merges motion events that are queued together. That is harmless while the UI thread is
idle, but while the worker imports TensorFlow or loads a model it holds the GIL for tenths
of a second, the pointer events of a fast stroke pile up, and merging them cuts the corner off
a "7" (read as "1") or a "4". Tk has a switch for it, `Tk_CollapseMotionEvents`, that Tkinter
does not expose, so it is called through ctypes. Best effort: on any failure the app still
works, only with Tk's default merging.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import tkinter as tk

log = logging.getLogger("gui.motion")


def keep_all_motion_events(root: tk.Tk) -> bool:
    """True when Tk now delivers every motion event for `root`'s display."""
    try:
        name = ctypes.util.find_library(f"tk{tk.TkVersion}") or f"libtk{tk.TkVersion}.so"
        libtk = ctypes.CDLL(name)  # the library _tkinter already loaded: same handle, same state
        libtk.Tk_MainWindow.restype = ctypes.c_void_p
        libtk.Tk_MainWindow.argtypes = [ctypes.c_void_p]
        libtk.Tk_CollapseMotionEvents.restype = ctypes.c_int
        libtk.Tk_CollapseMotionEvents.argtypes = [ctypes.c_void_p, ctypes.c_int]
        tkwin = libtk.Tk_MainWindow(root.tk.interpaddr())
        if not tkwin:
            raise RuntimeError("no Tk main window")
        # Tk_Display(tkwin) is a macro: the Display* is the first field of every Tk window struct.
        display = ctypes.cast(tkwin, ctypes.POINTER(ctypes.c_void_p))[0]
        libtk.Tk_CollapseMotionEvents(display, 0)
    except Exception as exc:  # Windows/macOS builds, static Tk, renamed library...
        log.debug("cannot switch off Tk motion merging (%s); strokes drawn while busy may lose corners", exc)
        return False
    log.debug("Tk motion-event merging switched off")
    return True
