"""Import gradio faster: call `skip_stub_writing()`, and `defer_mcp()` where no MCP server is wanted, before
gradio is first imported.

**The stub writer.**

Gradio's `ComponentMeta` calls `gradio.component_meta.create_or_modify_pyi` for every component class it defines,
its own ~80 included: each call reads the class's source, parses it with `ast`, renders the class's `.pyi` stub and
compares it with the one on disk (writing it where it can). The stubs only serve type checkers and IDEs, and the
wheel already ships them, yet this is about 40 % of `import gradio` (4.8 s against 8.7 s and 3.9 s against 6.5 s
in two runs on this project's 2-core machine; see bench/bench.py's start-up time). Nothing at run time reads a stub.

This module imports nothing from gradio itself. It installs an import hook that, right after
`gradio.component_meta` has run and before any component class is made, replaces the stub writer with a no-op.
A gradio without that function, or one already imported, is left exactly as it is.

**The MCP SDK.** `gradio.mcp`'s `GradioMCPServer` imports the `mcp` SDK in its class body (inside a try/except
ImportError, so that gradio works without it), which makes every `import gradio` load the SDK and its pydantic
types: 1.2-1.8 s of a 5.2-5.4 s `import gradio` here, in two runs with a training beside them. An app started
without `--mcp` never builds that class. `defer_mcp()` lets `gradio.mcp` run as if the SDK were absent, and
then makes `GradioMCPServer(...)` fail with a message saying why instead of with a missing attribute.

**pandas.** Gradio imports pandas in a dozen modules (`import pandas as pd` at their top) and uses it only inside
functions: to postprocess a DataFrame or a plot's value, to cache examples. Building this app's UI never touches
it, and importing it took 0.80-0.87 s by itself here (beside a training run): about a tenth of the start.
`defer_pandas()` puts a stand-in module in its place. The first time anything reads an attribute of it (a request
that draws a plot, or app.py's warm-up once the UI answers), it imports the real pandas, which from then on is
what `import pandas` gives.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import types


class _OnImport(importlib.abc.MetaPathFinder):
    """When `module` is first imported: run its code, refusing imports of the package `blocked` meanwhile (the
    module's own try/except ImportError then takes its path for a missing package), then call `after(module)`.
    One use: it leaves sys.meta_path once the module has run."""

    def __init__(self, module: str, after, blocked: str | None = None):
        self.module, self.after, self.blocked, self.loading = module, after, blocked, False

    def find_spec(self, name, path, target=None):
        if self.loading and self.blocked and (name == self.blocked or name.startswith(self.blocked + ".")):
            raise ImportError(f"{name} is deferred: this app was started without it (demo/gradio_import.py)")
        if name != self.module:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            sys.meta_path.remove(self)
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            self.loading = True
            try:
                run(module)
            finally:
                self.loading = False
                sys.meta_path.remove(self)
            self.after(module)

        spec.loader.exec_module = exec_module
        return spec


def _install(module: str, after, blocked: str | None = None) -> bool:
    """Put an `_OnImport` hook for `module` first in line; False if `module` is imported already (too late)."""
    if module in sys.modules:
        return False
    if not any(isinstance(finder, _OnImport) and finder.module == module for finder in sys.meta_path):
        sys.meta_path.insert(0, _OnImport(module, after, blocked))
    return True


def _no_stub_writer(module) -> None:
    if hasattr(module, "create_or_modify_pyi"):
        module.create_or_modify_pyi = lambda *args, **kwargs: None


def skip_stub_writing() -> bool:
    """Install the hook; False if gradio was imported already (too late to skip anything)."""
    return _install("gradio.component_meta", _no_stub_writer)


def _refuse_mcp_servers(module) -> None:
    server = getattr(module, "GradioMCPServer", None)
    if server is None:
        return

    def refuse(*args, **kwargs):
        raise RuntimeError("gradio was imported without its MCP support (demo/gradio_import.defer_mcp): "
                           "start the app with --mcp (or MCP=1) to serve the endpoints as MCP tools")

    server.__init__ = refuse


def defer_mcp() -> bool:
    """Import gradio without the MCP SDK, for an app that will not serve MCP; False if gradio.mcp is imported
    already (too late to defer anything)."""
    return _install("gradio.mcp", _refuse_mcp_servers, blocked="mcp")


class _Deferred(types.ModuleType):
    """Stands in `sys.modules` for a module not yet imported. `import name` hands it out like the real module (it
    has the real spec, so the import system sees a finished module); the first attribute read that it lacks
    imports the real module, copies its namespace in, and puts it in `sys.modules`. A submodule import reads
    `__path__` first, so it loads the real one as well."""

    def __init__(self, spec: importlib.machinery.ModuleSpec):
        super().__init__(spec.name)
        self.__spec__, self.__file__, self._lock = spec, spec.origin, threading.RLock()

    def __getattr__(self, attr: str):  # only for names not (yet) in the namespace
        with self._lock:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
                try:
                    real = importlib.import_module(self.__name__)
                except BaseException:
                    sys.modules.setdefault(self.__name__, self)
                    raise
                self.__dict__.update(real.__dict__)
        return getattr(importlib.import_module(self.__name__), attr)


def defer(module: str) -> bool:
    """Import `module` on first use instead of where it is imported; False if it is imported already or missing."""
    if module in sys.modules:
        return False
    spec = importlib.util.find_spec(module)
    if spec is None:
        return False
    sys.modules[module] = _Deferred(spec)
    return True


def defer_pandas() -> bool:
    """pandas loads on first use rather than with gradio; False if it is imported already."""
    return defer("pandas")
