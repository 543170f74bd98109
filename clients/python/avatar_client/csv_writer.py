"""Frame records as CSV rows: ``frame, time_s, AU01..AU45[, 52 blendshapes]``, one row per video frame."""

import csv
from typing import TextIO

from avatar_protocol import FrameRecord, Ready

VALUE_FORMAT = "{:.4f}"
TIME_FORMAT = "{:.6f}"


class RecordCsv:
    """Writes a header from the ready message, then a row per frame record (flushed, for live output)."""

    def __init__(self, out: TextIO, ready: Ready) -> None:
        self._out = out
        self._writer = csv.writer(out, lineterminator="\n")
        self._aus = "aus" in ready.outputs
        self._blendshapes = "blendshapes" in ready.outputs
        header = ["frame", "time_s"]
        if self._aus:
            header += list(ready.au_names)
        if self._blendshapes:
            header += list(ready.blendshape_names)
        self._writer.writerow(header)
        self.rows = 0

    def write(self, record: FrameRecord) -> None:
        row = [str(record.index), TIME_FORMAT.format(record.time_s)]
        if self._aus and record.aus is not None:
            row += [VALUE_FORMAT.format(v) for v in record.aus]
        if self._blendshapes and record.blendshapes is not None:
            row += [VALUE_FORMAT.format(v) for v in record.blendshapes]
        self._writer.writerow(row)
        self._out.flush()
        self.rows += 1
