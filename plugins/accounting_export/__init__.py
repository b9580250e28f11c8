"""accounting_export: the double-entry journal, receipts and exports (built in issue #5).

Discovered through its entry point; it implements no hook yet.
"""
