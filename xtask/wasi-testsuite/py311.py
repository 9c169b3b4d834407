"""Runs the wasi-testsuite's `run-tests` (written for Python 3.12) on Python
3.11, this project's machines' Python: `python3 py311.py SUITE/run-tests ARGS`.
It adds the three 3.12 features the runner uses: `PurePath.relative_to(...,
walk_up=True)`, `Path.walk` and `value in EnumClass`. On 3.12 it changes
nothing the runner sees.
"""
import os, pathlib, runpy, sys
_orig = pathlib.PurePath.relative_to
def relative_to(self, other, *rest, walk_up=False):
    if walk_up:
        return type(self)(os.path.relpath(self, other))
    return _orig(self, other, *rest)
pathlib.PurePath.relative_to = relative_to
def walk(self, top_down=True, on_error=None, follow_symlinks=False):
    for root, dirs, files in os.walk(self, topdown=top_down, onerror=on_error, followlinks=follow_symlinks):
        yield type(self)(root), dirs, files
pathlib.Path.walk = walk
import enum
_contains = enum.EnumType.__contains__
def contains(cls, value):
    if isinstance(value, cls):
        return True
    try:
        return value in cls._value2member_map_
    except TypeError:
        return False
enum.EnumType.__contains__ = contains
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
