"""The Qt binding keeps Python's reference counts right for values sent through signals.

PySide6 6.12.0 decrements the count of ``True``/``None`` on each emit of some signal
shapes; after a few thousand emits (a long run streams that many events) the interpreter
aborts in ``bool_dealloc``. Run in a child process so such an abort fails this test only.
"""

from __future__ import annotations

import subprocess
import sys

CHILD = r"""
import sys
from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal, Slot

app = QCoreApplication([])


class Sender(QObject):
    pair = Signal(str, bool)
    flag = Signal(bool)
    anything = Signal(object)

    @Slot()
    def run(self):
        for _ in range(3000):
            self.pair.emit("x", True)
            self.flag.emit(False)
            self.anything.emit(None)


class Receiver(QObject):
    count = 0

    @Slot(str, bool)
    def on_pair(self, name, value):
        Receiver.count += 1

    @Slot(bool)
    def on_flag(self, value):
        Receiver.count += 1

    @Slot(object)
    def on_anything(self, value):
        Receiver.count += 1


thread = QThread()
sender = Sender()
sender.moveToThread(thread)
thread.start()
receiver = Receiver()
sender.pair.connect(receiver.on_pair)
sender.flag.connect(receiver.on_flag)
sender.anything.connect(receiver.on_anything)
before = [sys.getrefcount(v) for v in (True, False)]
QTimer.singleShot(0, sender.run)
while Receiver.count < 9000:
    app.processEvents()
thread.quit()
thread.wait()
after = [sys.getrefcount(v) for v in (True, False)]  # None's count moves by itself
print(before, after)
assert all(a >= b - 20 for a, b in zip(after, before)), (before, after)
"""


def test_signals_keep_reference_counts():
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
