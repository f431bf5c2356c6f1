"""A painless interpreter for the subset Tracardi's upgrade plans use: a lark parser and
a compiler to Python closures, so a script is compiled once and run per document."""

from tracardi_daemon.painless.errors import ScriptFailed, ScriptRefused
from tracardi_daemon.painless.script import Script, compile_script

__all__ = ["Script", "ScriptFailed", "ScriptRefused", "compile_script"]
