"""The ledger's repositories, one module per concern, on a connection `LedgerHook` owns.

Each repository only reads and writes its tables; business rules stay in the map layer and the
services that call them (DESIGN.md, "Data flow", load layer). None imports sync or mapping.
"""
