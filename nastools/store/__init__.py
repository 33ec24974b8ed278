"""The result store: every measurement and every search in one sqlite file.

:class:`ResultStore` opens (or creates) a store; :func:`copy_store` and :func:`merge_stores` copy
and combine stores safely while another process writes them (``nastools store copy`` and
``nastools store merge`` on the command line).

Example:
    >>> import os, tempfile
    >>> from nastools.store import ResultStore
    >>> with ResultStore(os.path.join(tempfile.mkdtemp(), "results.sqlite")) as store:
    ...     store.has_search("nsga2-s0")
    False
"""

from nastools.store._connection import StoreError
from nastools.store._copy import MergeResult, copy_store, merge_stores
from nastools.store._searches import SearchInProgressError
from nastools.store._store import ResultStore

__all__ = ["MergeResult", "ResultStore", "SearchInProgressError", "StoreError", "copy_store", "merge_stores"]
