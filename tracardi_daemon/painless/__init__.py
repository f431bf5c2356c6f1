"""A painless interpreter for the subset Tracardi's upgrade plans use: a lark parser and
a compiler to Python closures, so a script is compiled once and run per document.

Where it is knowingly not painless (none of Tracardi's scripts reaches these; the
differential tests compare the rest with a real painless node):
- maps keep insertion order, not a HashMap's (seen only when a map becomes a string);
- a whole number within the int range is an int even when written ``5L`` (only the
  overflow of such sums differs);
- ``for`` iterates over a copy, where painless throws ConcurrentModificationException;
- some type errors painless refuses when compiling (a String passed where an int is
  declared) fail when the script runs; storing into an array does not check the type;
- ``===`` and ``!==`` are refused: painless compares object identity there.
"""

from tracardi_daemon.painless.errors import ScriptFailed, ScriptRefused
from tracardi_daemon.painless.script import Script, compile_script

__all__ = ["Script", "ScriptFailed", "ScriptRefused", "compile_script"]
