"""Import gradio without its type-stub writer: call `skip_stub_writing()` before gradio is first imported.

Gradio's `ComponentMeta` calls `gradio.component_meta.create_or_modify_pyi` for every component class it defines,
its own ~80 included: each call reads the class's source, parses it with `ast`, renders the class's `.pyi` stub and
compares it with the one on disk (writing it where it can). The stubs only serve type checkers and IDEs, and the
wheel already ships them, yet this is about 40 % of `import gradio` (4.8 s against 8.7 s and 3.9 s against 6.5 s
in two runs on this project's 2-core machine; see bench/bench.py's start-up time). Nothing at run time reads a stub.

This module imports nothing from gradio itself. It installs an import hook that, right after
`gradio.component_meta` has run and before any component class is made, replaces the stub writer with a no-op.
A gradio without that function, or one already imported, is left exactly as it is.
"""

import importlib.abc
import importlib.machinery
import sys

MODULE = "gradio.component_meta"


class _SkipStubWriter(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != MODULE:
            return None
        sys.meta_path.remove(self)  # once is enough
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            if hasattr(module, "create_or_modify_pyi"):
                module.create_or_modify_pyi = lambda *args, **kwargs: None

        spec.loader.exec_module = exec_module
        return spec


def skip_stub_writing() -> bool:
    """Install the hook; False if gradio was imported already (too late to skip anything)."""
    if MODULE in sys.modules:
        return False
    if not any(isinstance(finder, _SkipStubWriter) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SkipStubWriter())
    return True
