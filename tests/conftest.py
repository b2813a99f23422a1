"""Shared fixtures: a tiny planted corpus, a tiny real trained model, and app/client fixtures."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"
TOPICS = {
    "energy": "oil crude barrel opec refinery pipeline gasoline drilling petroleum energy",
    "elections": "election vote ballot candidate parliament campaign poll voters minister party",
    "football": "football match goal striker league coach stadium referee penalty championship",
    "space": "rocket orbit satellite astronaut launch nasa moon spacecraft telescope mission",
}
# ids that stress routing: a slash, dots, unicode, spaces and percent signs
ODD_IDS = ("a/b", "dots.in.id", "ünïcødé-ид", "with space", "100%")
TINY_VECTORIZER = {"min_df": 1, "n_components": 4, "stop_words": None}


def make_tiny_corpus(path: Path, per_topic: int = 8, seed: int = 0, title_tag: str = "") -> list[dict]:
    """Write a small JSONL corpus with four clearly separated topics and return its records.

    Parameters
    ----------
    path : Path
        Where to write the corpus (JSON Lines).
    per_topic : int
        Articles per topic.
    seed : int
        Random seed for the word draws.
    title_tag : str
        Appended to every title, to tell versions trained on variants apart.

    Returns
    -------
    list of dict
        The records written, in file order.
    """
    rng = random.Random(seed)
    records = []
    odd = list(ODD_IDS)
    for topic, words in TOPICS.items():
        vocabulary = words.split()
        for i in range(per_topic):
            article_id = odd.pop() if odd and i in (1, 2) else f"{topic}-{i}"
            body = " ".join(rng.choice(vocabulary) for _ in range(40))
            records.append({
                "id": article_id, "title": f"{topic.title()} story {i}: {' '.join(rng.sample(vocabulary, 3))}{title_tag}",
                "body": body, "tags": [topic], "published_at": f"2024-01-{1 + len(records) % 28:02d}",
                "url": f"https://news.example.org/{topic}/{i}", "section": topic,
            })
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return records


@pytest.fixture(scope="session", autouse=True)
def _dedupe_off_by_default():
    """Serve without the default near-duplicate skipping (RELATED_DEDUPE=off) unless a test sets it.

    The planted topics are near-duplicates by construction (similarity 0.93-0.99 within a
    topic), so the default threshold would empty their lists; tests/test_rules_* pass
    ``dedupe`` explicitly.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELATED_DEDUPE", "off")
        yield


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """A tiny planted corpus (path, records) shared by the session."""
    path = tmp_path_factory.mktemp("corpus") / "tiny.jsonl"
    return path, make_tiny_corpus(path)


@pytest.fixture(scope="session")
def train_tiny() -> Callable[..., str]:
    """Return ``train_tiny(corpus, models_dir, **params) -> version``: a real, fast training run."""
    from training.pipeline import train

    def _train(corpus: Path, models_dir: Path, neighbors: int = 20, **params: object) -> str:
        vectorizer_params = {**TINY_VECTORIZER, **params}
        result = train(corpus, models_dir, neighbors=neighbors, n_jobs=1, keep=100,
                       vectorizer_params=vectorizer_params)
        return result.version

    return _train


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory, tiny_corpus, train_tiny) -> Path:
    """A models directory holding one version trained on the tiny corpus (do not modify)."""
    models_dir = tmp_path_factory.mktemp("trained") / "models"
    train_tiny(tiny_corpus[0], models_dir)
    return models_dir


@pytest.fixture
def models_dir(tmp_path: Path, trained_models: Path) -> Path:
    """A private copy of the trained models directory that a test may change."""
    target = tmp_path / "models"
    shutil.copytree(trained_models, target)
    return target


@pytest.fixture
def app_config(models_dir: Path) -> dict:
    """Settings for the app under test; override in a test module to change them."""
    return {"models_dir": str(models_dir), "TESTING": True}


@pytest.fixture
def app(app_config: dict):
    """The Flask app built by the factory on ``app_config``."""
    from service import create_app

    return create_app(app_config)


@pytest.fixture
def client(app):
    """A Flask test client of ``app``."""
    return app.test_client()


@pytest.fixture
def shared_dir() -> Path:
    """The research data folder ../shared; skips the test when it is absent."""
    if not (SHARED_DIR / "data").is_dir():
        pytest.skip(f"research data not available: {SHARED_DIR / 'data'} is absent")
    return SHARED_DIR
