"""Asking: the question, its q_core/q_inst split (editable), mode with the reason, an
estimate before starting; then the streamed answer with thinking collapsed."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.agent.decompose import decompose
from app.gui.markdown_view import SafeMarkdownView
from app.records import Mode

MODES = [
    ("Automatic", Mode.AUTO.value),
    ("Single pass", Mode.SINGLE_PASS.value),
    ("Memory agent", Mode.MEMORY_AGENT.value),
]
PLAN_DELAY_MS = 300  # typing pause before a new plan (and estimate) is asked for


class AskPanel(QWidget):
    ask_requested = Signal(str, str, str, str)  # question, q_core, q_inst, mode
    plan_wanted = Signal(str, str, str)  # q_core, q_inst, mode: re-estimate

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.question = QPlainTextEdit()
        self.question.setPlaceholderText("Ask a question about the whole document…")
        self.question.setAccessibleName("Question")
        self.question.setMaximumHeight(70)
        self.q_core = QLineEdit()
        self.q_core.setAccessibleName("What is asked (q_core)")
        self.q_core.setToolTip("Drives the reading: the model looks for this in every chunk.")
        self.q_inst = QLineEdit()
        self.q_inst.setAccessibleName("Answer format (q_inst)")
        self.q_inst.setToolTip("Used only for the final answer (e.g. 'Answer in one word').")
        self.mode = QComboBox()
        self.mode.setAccessibleName("Answer mode")
        for label, value in MODES:
            self.mode.addItem(label, value)
        self.plan_label = QLabel("Open a document and load a model to see the plan.")
        self.plan_label.setTextFormat(Qt.TextFormat.PlainText)  # quotes the document's title
        self.plan_label.setWordWrap(True)
        self.plan_label.setAccessibleName("Run plan and estimate")
        self.ask_button = QPushButton("Ask")
        self.ask_button.setAccessibleName("Ask the question")
        self.ask_button.setDefault(True)
        self.ask_button.setEnabled(False)
        self.ask_button.clicked.connect(self._ask)

        form = QFormLayout()
        form.addRow("Looking for:", self.q_core)
        form.addRow("Answer format:", self.q_inst)
        row = QHBoxLayout()
        row.addWidget(QLabel("Mode:"))
        row.addWidget(self.mode)
        row.addStretch(1)
        row.addWidget(self.ask_button)

        self.answer = SafeMarkdownView()
        self.answer.setAccessibleName("Answer")
        self.answer.setPlaceholderText("The answer appears here.")
        self.thinking_toggle = QToolButton()
        self.thinking_toggle.setText("Show thinking")
        self.thinking_toggle.setCheckable(True)
        self.thinking_toggle.setAccessibleName("Show the model's thinking")
        self.thinking = QPlainTextEdit(readOnly=True)
        self.thinking.setAccessibleName("Thinking")
        self.thinking.hide()
        self.thinking_toggle.toggled.connect(self._toggle_thinking)
        self.thinking_toggle.hide()

        layout = QVBoxLayout(self)
        layout.addWidget(self.question)
        layout.addLayout(form)
        layout.addLayout(row)
        # Its own row, the panel's full width: between the mode box and the button a
        # narrow window left it a column a few words wide, its last lines cut off.
        layout.addWidget(self.plan_label)
        layout.addWidget(self.answer, 1)
        layout.addWidget(self.thinking_toggle)
        layout.addWidget(self.thinking)

        self._streamed = ""
        self._split_timer = QTimer(self, singleShot=True, interval=350)
        self._split_timer.timeout.connect(self._decompose)
        self.question.textChanged.connect(self._split_timer.start)
        # A plan chunks the whole document: asked for once typing pauses, not per keystroke.
        self._plan_timer = QTimer(self, singleShot=True, interval=PLAN_DELAY_MS)
        self._plan_timer.timeout.connect(self._replan)
        self.q_core.textEdited.connect(self._plan_timer.start)
        self.q_inst.textEdited.connect(self._plan_timer.start)
        self.mode.currentIndexChanged.connect(self._plan_timer.start)

    # -- question ---------------------------------------------------------------------
    def set_question(self, text: str) -> None:
        self.question.setPlainText(text)
        self._split_timer.stop()  # split now, not again when the typing timer fires
        self._decompose()

    def _decompose(self) -> None:
        query = decompose(self.question.toPlainText())
        self.q_core.setText(query.q_core)
        self.q_inst.setText(query.q_inst)
        self._replan()

    def _replan(self) -> None:
        self._plan_timer.stop()  # asked now: not again when the typing timer fires
        # Also without a question: the window then says what the plan is waiting for.
        self.plan_wanted.emit(self.q_core.text(), self.q_inst.text(), self.mode_value())

    def mode_value(self) -> str:
        return str(self.mode.currentData())

    def _ask(self) -> None:
        question = self.question.toPlainText().strip()
        if question and self.q_core.text().strip():
            self.ask_requested.emit(
                question, self.q_core.text().strip(), self.q_inst.text().strip(), self.mode_value()
            )

    def set_plan_text(self, text: str) -> None:
        self.plan_label.setText(text)
        self.plan_label.setToolTip(text)  # the whole plan, should a short panel cut it

    # -- answer -----------------------------------------------------------------------
    def clear_answer(self) -> None:
        self._streamed = ""
        self.answer.clear()
        self.thinking.clear()
        self.thinking_toggle.hide()
        self.thinking.hide()
        self.thinking_toggle.setChecked(False)

    def stream(self, text: str, thinking: bool) -> None:
        if thinking:
            self.thinking_toggle.show()
            self.thinking.moveCursor(self.thinking.textCursor().MoveOperation.End)
            self.thinking.insertPlainText(text)
        else:
            self._streamed += text
            self.answer.moveCursor(self.answer.textCursor().MoveOperation.End)
            self.answer.insertPlainText(text)

    def show_answer(self, text: str, thinking: str) -> None:
        self.answer.set_markdown(text)
        self.thinking.setPlainText(thinking)
        self.thinking_toggle.setVisible(bool(thinking))

    def _toggle_thinking(self, on: bool) -> None:
        self.thinking.setVisible(on)
        self.thinking_toggle.setText("Hide thinking" if on else "Show thinking")
