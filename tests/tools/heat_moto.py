"""moto_serve.py for the heat benchmark (scripts/bench-heat), its
TransactWriteItems made cheap.

moto 5.2.5 backs a transaction up by deep-copying every table it touches,
once per item of the transaction, so that a cancelled one can be rolled
back: on a table of a thousand items each write takes hundreds of
milliseconds, and the benchmark's server, whose local dispatcher tries every
due delivery at once, times out on its store. Here the backup is the items
the transaction writes (each read before, put back or deleted if it is
cancelled): the same outcome, since DynamoDB requests are taken one at a
time (moto_serve.py) and a transaction writes nothing but its own items.

Arguments as moto_serve.py's.
"""

import copy

import moto.dynamodb.models as models
from moto.dynamodb.models.table import Table

import moto_serve


class _NoTableCopies:
    """`copy` for moto's DynamoDB models: a table's "copy" is itself."""

    def deepcopy(self, x, memo=None):
        return x if isinstance(x, Table) else copy.deepcopy(x, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


def _item_keys(backend, transact_items):
    for item in transact_items:
        op_type, op = next(iter(item.items()))
        name = op.get("TableName")
        if op_type == "ConditionCheck" or name not in backend.tables:
            continue
        if op_type == "Put":
            table = backend.get_table(name)
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
        else:
            key = op["Key"]
        yield name, key


_original = models.DynamoDBBackend.transact_write_items


def transact_write_items(self, transact_items):
    saved = []
    for name, key in _item_keys(self, transact_items):
        try:
            before = self.get_item(name, key)
        except Exception:  # a malformed key: the original refuses it
            before = None
        saved.append((name, key, before.to_json()["Attributes"] if before else None))
    try:
        return _original(self, transact_items)
    except Exception:
        for name, key, before in saved:
            if before is not None:
                self.put_item(name, before)
            elif self.get_item(name, key) is not None:
                self.delete_item(name, key)
        raise


models.copy = _NoTableCopies()
models.DynamoDBBackend.transact_write_items = transact_write_items

if __name__ == "__main__":
    moto_serve.main()
