"""Rewrite the configuration table in README.md from aiblog.config.SETTINGS."""
from pathlib import Path

from aiblog.config import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"
HEADER = "| Variable | Default | Purpose |"

text = README.read_text()
start = text.index(HEADER)
end = text.index("\n\n", start)
README.write_text(text[:start] + markdown_table() + text[end:])
print("README.md configuration table updated")
