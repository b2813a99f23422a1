"""A corpus as the rows of a model version: vectoriser records, metadata, display texts, dates."""

from __future__ import annotations

import platform
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.corpus import Article


@dataclass
class Rows:
    """The per-row data a model version stores, gathered from a corpus in one pass."""

    ids: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    articles: list[dict[str, Any]] = field(default_factory=list)
    texts: list[dict[str, Any]] = field(default_factory=list)
    published: list[float] = field(default_factory=list)

    title_field: str = "title"

    def add(self, article: Article) -> None:
        """Append one article's vectoriser record, metadata, display text and date."""
        self.ids.append(article.id)
        self.records.append({**article.texts, "tags": article.tags})
        self.articles.append({
            "id": article.id, "title": article.title, "url": article.url,
            "published_at": article.published_at, "tags": article.tags, **article.extra,
        })
        body = article.texts.get("body")
        if body is None:
            body = "\n\n".join(
                v for k, v in article.texts.items() if k != self.title_field and v
            )
        self.texts.append({"id": article.id, "title": article.title, "body": body})
        self.published.append(np.nan if article.published_ts is None else article.published_ts)


def library_versions() -> dict[str, str]:
    """Versions of Python and the numeric libraries, recorded in every manifest.

    Returns
    -------
    dict of str to str
    """
    import joblib  # training imports them anyway; their __version__ is quicker than package metadata
    import numpy
    import scipy
    import sklearn

    return {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__, "joblib": joblib.__version__}


def read_rows(articles: Iterable[Article], title_field: str = "title") -> Rows:
    """Gather a stream of articles into :class:`Rows`.

    Parameters
    ----------
    articles : iterable of Article
    title_field : str
        The field displayed as the title (left out of the display body).

    Returns
    -------
    Rows
    """
    rows = Rows(title_field=title_field)
    for article in articles:
        rows.add(article)
    return rows
