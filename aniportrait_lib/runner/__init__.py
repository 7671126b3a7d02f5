"""The notebook suite: what notebooks call (:func:`start_notebook`) and what runs them headlessly
(``python -m aniportrait_lib.runner``)."""

from aniportrait_lib.runner.notebook import NotebookRun, start_notebook

__all__ = ["NotebookRun", "start_notebook"]
