"""The gate's held-out rows: the ``holdout`` share of the lineage's recent batches, which no
version learnt, read from the lake and kept per worker (the next steps score on them again)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from app.data.lake import BatchNotFound
from app.lifecycle.home import Home
from app.lifecycle.lineage import RECENT_BATCHES, Cache

# The gate scores on the newest this many held-out rows.
POOL_MAX_ROWS = 5_000


class HoldoutPool:
    def __init__(self, home: Home):
        self.home = home
        self.columns = home.dataset.learnt_columns
        self._rows = Cache(RECENT_BATCHES * 3)

    def pool(self, batch_ids: list[str], limit: int = POOL_MAX_ROWS) -> pd.DataFrame:
        """The held-out rows of ``batch_ids``, the newest ``limit`` of them.

        The batches are joined as Arrow tables and become one frame once: each batch's text
        columns have their own categories, and pandas joining dozens of such categoricals
        took ten times what the rest of the pool did (10 ms of a 24 ms train step).
        """
        tables = [rows for rows in map(self._read, batch_ids) if rows is not None]
        if not tables:
            return pd.DataFrame(columns=self.columns)
        # Permissive, as pandas was: a number whole in one batch and not in the next is a float.
        joined = pa.concat_tables(tables, promote_options="permissive")
        return joined.slice(max(joined.num_rows - limit, 0)).to_pandas()

    def _read(self, batch_id: str) -> pa.Table | None:
        """The held-out rows of ``batch_id``; None once its rows are forgotten or dropped."""
        rows = self._rows.take(batch_id)
        if rows is None:
            try:
                rows = self._rows.put(batch_id, self.home.lake.read_table(
                    "holdout", batch_id, columns=self.columns))
            except BatchNotFound:
                return None
        return rows
