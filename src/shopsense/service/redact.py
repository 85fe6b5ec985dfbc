"""What the server says about itself: no filesystem paths in any answer.

Error texts of libraries name the files they failed on (a model folder, an index file, a cache
under the home directory). Those paths tell a caller where the shop keeps its data and who runs it;
the server log keeps them, the HTTP answer replaces each with ``<path>``.
"""

from __future__ import annotations

import re

# an absolute POSIX path of two or more parts, or a Windows drive path; not the middle of a word
# or of an id like "a/b" (an API route such as "/train" has one part and stays)
_PATH = re.compile(r"(?<![\w.~/\\-])(?:/[\w.~+@%-]+(?:/[\w.~+@%-]+)+/?|[A-Za-z]:\\[^\s'\"]*)")


def without_paths(text: str) -> str:
    """``text`` with every absolute filesystem path replaced by ``<path>``."""
    return _PATH.sub("<path>", text)
