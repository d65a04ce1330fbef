"""The site's own tests run in the site, with its own ``pytest.ini``; this repository's run never collects them."""

from __future__ import annotations

collect_ignore = ["site"]
