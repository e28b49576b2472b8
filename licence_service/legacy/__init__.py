"""Hà Nội's legacy licence export → the national register (issue 5; NATIONAL-MODEL.md).

`import_legacy` is the whole conversion; `cli.registry` is its Flask command group
(`flask --app licence_service registry import-legacy FILE.csv`).
"""

from licence_service.legacy.importer import ImportSummary, import_legacy, reject_report_path
from licence_service.legacy.rows import MalformedFileError

__all__ = ["ImportSummary", "MalformedFileError", "import_legacy", "reject_report_path"]
