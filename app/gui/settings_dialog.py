"""Settings: model, server waits and proxy, context and budgets, llama.cpp options,
sampling. Invalid values are refused with the reason; valid ones persist."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.errors import BackendError, ModelError
from app.llm.factory import DEMO_NOTE
from app.llm.remote_keys import (
    api_key_from_keyring,
    split_url_password,
    store_api_key,
    store_url_password,
)
from app.records import Mode
from app.settings import FIRST_TOKEN_RANGE_S, KV_TYPES, SILENCE_RANGE_S, Settings

PROXY_NOTE = (
    "Used for the server and for model downloads. Empty: connect directly. The "
    "HTTP_PROXY, HTTPS_PROXY and ALL_PROXY environment variables are never used."
)


def _spin(low: int, high: int, value: int, special: str = "") -> QSpinBox:
    box = QSpinBox(minimum=low, maximum=high, value=value)
    box.setGroupSeparatorShown(True)
    if special:
        box.setSpecialValueText(special)
    return box


def _dspin(low: float, high: float, value: float, step: float) -> QDoubleSpinBox:
    return QDoubleSpinBox(minimum=low, maximum=high, value=value, singleStep=step, decimals=2)


def _seconds(bounds: tuple[float, float], value: float, step: float) -> QDoubleSpinBox:
    box = _dspin(*bounds, value, step)
    box.setDecimals(1)
    box.setSuffix(" s")
    return box


# A form row: a label and its field, or a field alone across the row.
Row = tuple[str, QWidget] | QWidget


def _form(rows: Sequence[Row], page: QWidget | None = None) -> QWidget:
    """``page`` (a new one by default) laid out as a form of ``rows``."""
    if page is None:
        page = QWidget()
    form = QFormLayout(page)
    for row in rows:
        if isinstance(row, QWidget):
            form.addRow(row)
        else:
            form.addRow(*row)
    return page


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self.result_settings: Settings | None = None
        s = settings
        # Model
        self.backend = QComboBox()
        self.backend.addItem("This computer (llama.cpp)", "local")
        self.backend.addItem("A server (llama-server, vLLM)", "remote")
        self.backend.setCurrentIndex(0 if s.backend == "local" else 1)
        self.model_path = QLineEdit(s.model_path)
        self.model_path.setPlaceholderText("Demo model (SmolLM2-135M, bundled)")
        self.model_path.setAccessibleName("Model file")
        browse = QPushButton("Choose…")
        browse.setAccessibleName("Choose a GGUF model file")
        browse.clicked.connect(self._browse)
        use_demo = QPushButton("Use demo")
        use_demo.clicked.connect(lambda: self.model_path.setText(""))
        path_field = QWidget()
        path_row = QHBoxLayout(path_field)
        path_row.setContentsMargins(0, 0, 0, 0)
        path_row.addWidget(self.model_path, 1)
        path_row.addWidget(browse)
        path_row.addWidget(use_demo)
        self.demo_note = demo = QLabel(DEMO_NOTE)
        demo.setWordWrap(True)
        demo.setAccessibleName("About the demo model")
        self.remote_url = QLineEdit(s.remote_url, placeholderText="http://gpu-server:8080")
        self.remote_model = QLineEdit(s.remote_model, placeholderText="(first model served)")
        saved_key = bool(s.remote_url) and api_key_from_keyring(s.remote_url) is not None
        # Never shown back: typing replaces the saved key, the box below removes it.
        self.api_key = QLineEdit(
            placeholderText="saved in the system keyring" if saved_key else "none"
        )
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setAccessibleName("API key")
        self.forget_key = QCheckBox("Remove the saved key")
        self.forget_key.setVisible(saved_key)
        self.parallel = _spin(1, 64, s.remote_parallel)
        self.first_token = _seconds(FIRST_TOKEN_RANGE_S, s.remote_timeout_s, 10)
        self.first_token.setAccessibleName("Wait for the first token")
        self.first_token.setToolTip(
            "How long the server may read the prompt before its first token; "
            "past it the call stops with a message."
        )
        self.silence = _seconds(SILENCE_RANGE_S, s.remote_silence_s, 5)
        self.silence.setAccessibleName("Longest silence between tokens")
        self.silence.setToolTip(
            "The longest gap between two tokens (keep-alives do not count) before the "
            "server is given up on."
        )
        self.proxy = QLineEdit(s.proxy_url, placeholderText="none: connect directly")
        self.proxy.setAccessibleName("Proxy URL")
        proxy_note = QLabel(PROXY_NOTE)
        proxy_note.setWordWrap(True)
        network = _form([("Proxy URL:", self.proxy), ("", proxy_note)], QGroupBox("Network"))
        model_tab = _form(
            [
                ("Run the model on:", self.backend),
                ("Model file (GGUF):", path_field),
                ("", demo),
                ("Server URL:", self.remote_url),
                ("Model on server:", self.remote_model),
                ("API key:", self.api_key),
                ("", self.forget_key),
                ("Parallel questions:", self.parallel),
                ("Wait for first token:", self.first_token),
                ("Longest token gap:", self.silence),
                network,
            ]
        )
        self._model_tab = model_tab
        # Reading
        self.n_ctx = _spin(0, 1_048_576, s.n_ctx, "automatic (largest that fits)")
        self.n_ctx.setSingleStep(1024)
        self.max_ctx = _spin(4096, 262_144, s.max_ctx)
        self.max_ctx.setSingleStep(4096)
        self.max_ctx.setToolTip(
            "The largest context the automatic plan chooses: 131,072 is the paper's "
            "full-context limit, 262,144 the model's native one."
        )
        self.chunk = _spin(0, 524_288, s.chunk_tokens, "automatic")
        self.memory = _spin(0, 262_144, s.memory_tokens, "automatic")
        self.max_new = _spin(0, 262_144, s.max_new_tokens, "automatic")
        self.mode = QComboBox()
        for label, value in (
            ("Automatic", Mode.AUTO.value),
            ("Single pass", Mode.SINGLE_PASS.value),
            ("Memory agent", Mode.MEMORY_AGENT.value),
        ):
            self.mode.addItem(label, value)
        self.mode.setCurrentIndex(self.mode.findData(s.mode))
        self.drop_hf = QCheckBox("Drop headers and footers repeated on every page")
        self.drop_hf.setChecked(s.drop_headers_footers)
        self.ocr = QCheckBox("OCR pages without text (needs Tesseract)")
        self.ocr.setChecked(s.ocr)
        self.theme = QComboBox()
        self.theme.setAccessibleName("Appearance")
        for label, value in (("As the system", "system"), ("Light", "light"), ("Dark", "dark")):
            self.theme.addItem(label, value)
        self.theme.setCurrentIndex(max(0, self.theme.findData(s.theme)))
        reading_tab = _form(
            [
                ("Context size (tokens):", self.n_ctx),
                ("Largest automatic context:", self.max_ctx),
                ("Chunk size (tokens):", self.chunk),
                ("Memory budget (tokens):", self.memory),
                ("Max new tokens per call:", self.max_new),
                ("Default mode:", self.mode),
                self.drop_hf,
                self.ocr,
                ("Appearance:", self.theme),
            ]
        )
        # Hardware: the automatic plan, or every value by hand
        self.placement = QComboBox()
        self.placement.setAccessibleName("Placement")
        self.placement.addItem("Automatic: plan for this model and machine", "auto")
        self.placement.addItem("Manual: the values below", "manual")
        self.placement.setCurrentIndex(max(0, self.placement.findData(s.placement)))
        self.placement.currentIndexChanged.connect(self._placement_changed)
        self.n_cpu_moe = _spin(-1, 1000, s.experts_in_ram)
        self.n_cpu_moe.setToolTip(
            "Keep the MoE experts of the first N layers in RAM (llama.cpp's --n-cpu-moe); "
            "-1: every layer's (--cpu-moe). The rest of each layer stays on the GPU."
        )
        self.plan_label = QLabel()
        self.plan_label.setWordWrap(True)
        self.plan_label.setAccessibleName("Placement plan")
        self.plan_label.setTextFormat(Qt.TextFormat.PlainText)  # text from a model file
        self.gpu_layers = _spin(-1, 1000, s.n_gpu_layers)
        self.gpu_layers.setToolTip("-1 offloads every layer")
        self.flash = QCheckBox("Flash attention")
        self.flash.setChecked(s.flash_attn)
        self.kv = QComboBox()
        self.kv.addItems(list(KV_TYPES))
        self.kv.setCurrentText(s.kv_cache_type)
        self.threads = _spin(0, 256, s.n_threads, "automatic")
        self.batch = _spin(1, 8192, s.n_batch)
        hw_tab = _form(
            [
                ("Placement:", self.placement),
                ("", self.plan_label),
                ("GPU layers:", self.gpu_layers),
                ("Experts in RAM (layers):", self.n_cpu_moe),
                ("", self.flash),
                ("KV cache type:", self.kv),
                ("Threads:", self.threads),
                ("Batch size:", self.batch),
            ]
        )
        # Sampling
        self.temperature = _dspin(0.0, 2.0, s.temperature, 0.05)
        self.top_p = _dspin(0.0, 1.0, s.top_p, 0.01)
        self.top_k = _spin(0, 1000, s.top_k)
        self.min_p = _dspin(0.0, 1.0, s.min_p, 0.01)
        self.presence = _dspin(0.0, 2.0, s.presence_penalty, 0.1)
        self.seed = _spin(0, 2**31 - 1, s.seed)
        sampling_tab = _form(
            [
                ("Temperature:", self.temperature),
                ("Top p:", self.top_p),
                ("Top k:", self.top_k),
                ("Min p:", self.min_p),
                ("Presence penalty:", self.presence),
                ("Seed:", self.seed),
            ]
        )

        tabs = QTabWidget()
        tabs.addTab(model_tab, "Model")
        tabs.addTab(reading_tab, "Reading")
        tabs.addTab(hw_tab, "Hardware")
        tabs.addTab(sampling_tab, "Sampling")
        self.error = QLabel()
        self.error.setStyleSheet("color: #c0392b")
        self.error.setWordWrap(True)
        self.error.setAccessibleName("Settings problems")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.base = s
        self._model_fields: tuple[QWidget, ...] = (path_field, demo)
        self._server_fields: tuple[QWidget, ...] = (
            *(self.remote_url, self.remote_model, self.api_key, self.forget_key),
            *(self.parallel, self.first_token, self.silence),
        )
        self.backend.currentIndexChanged.connect(self._backend_changed)
        self.model_path.textChanged.connect(self._show_demo_note)
        # The plan reads the file's header: once the path is entered, not per keystroke.
        self.model_path.editingFinished.connect(self._refresh_plan)
        self.backend.currentIndexChanged.connect(self._refresh_plan)
        self._backend_changed()
        self._placement_changed()

    def _backend_changed(self) -> None:
        """Only the chosen backend's fields can be edited (the others keep their values)."""
        remote = self.backend.currentData() == "remote"
        for widget in self._model_fields:
            widget.setEnabled(not remote)
        for widget in self._server_fields:
            widget.setEnabled(remote)
        self._show_demo_note()

    def _show_demo_note(self) -> None:
        """The demo's note ("its answers are poor") only while the demo is the model: an
        empty model file on this computer. Under a chosen GGUF or a server it misleads."""
        demo = self.backend.currentData() == "local" and not self.model_path.text().strip()
        form = self._model_tab.layout()
        if isinstance(form, QFormLayout):  # hides the note's row, not only the note
            form.setRowVisible(self.demo_note, demo)

    def _placement_changed(self) -> None:
        manual = self.placement.currentData() == "manual"
        for widget in (self.gpu_layers, self.n_cpu_moe, self.flash, self.kv):
            widget.setEnabled(manual)
        self._refresh_plan()

    def _refresh_plan(self) -> None:
        self.plan_label.setText(self.describe_plan())

    def describe_plan(self) -> str:
        """The automatic plan for the chosen model on this machine, before loading it."""
        if self.backend.currentData() == "remote":
            return "A server places the model itself."
        from app.llm.factory import plan_launch

        try:
            launch = plan_launch(self.collect())
        except Exception as error:  # noqa: BLE001 - shown, not raised: the file may be wrong
            return f"No plan: {error}"
        if launch.plan is None:
            return "Manual placement: the values below are used as they are."
        return f"Plan: {launch.plan.describe()}. {launch.plan.reason}"

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF model", "", "GGUF (*.gguf)")
        if path:
            self.model_path.setText(path)
            self._refresh_plan()

    def collect(self) -> Settings:
        return self.base.with_changes(
            backend=self.backend.currentData(),
            model_path=self.model_path.text().strip(),
            remote_url=self.remote_url.text().strip(),
            remote_model=self.remote_model.text().strip(),
            remote_parallel=self.parallel.value(),
            remote_timeout_s=self.first_token.value(),
            remote_silence_s=self.silence.value(),
            proxy_url=self.proxy.text().strip(),
            n_ctx=self.n_ctx.value(),
            max_ctx=self.max_ctx.value(),
            placement=self.placement.currentData(),
            n_cpu_moe=self.n_cpu_moe.value(),
            cpu_moe=False,
            chunk_tokens=self.chunk.value(),
            memory_tokens=self.memory.value(),
            max_new_tokens=self.max_new.value(),
            mode=self.mode.currentData(),
            drop_headers_footers=self.drop_hf.isChecked(),
            ocr=self.ocr.isChecked(),
            n_gpu_layers=self.gpu_layers.value(),
            flash_attn=self.flash.isChecked(),
            kv_cache_type=self.kv.currentText(),
            n_threads=self.threads.value(),
            n_batch=self.batch.value(),
            temperature=self.temperature.value(),
            top_p=self.top_p.value(),
            top_k=self.top_k.value(),
            min_p=self.min_p.value(),
            presence_penalty=self.presence.value(),
            seed=self.seed.value(),
            theme=self.theme.currentData(),
        )

    def _save(self) -> None:
        settings = self.collect()
        problems = settings.validate()
        if problems:
            self.error.setText("Not saved: " + "; ".join(problems) + ".")
            return
        if settings.backend == "local" and settings.model_path:
            from app.llm.gguf import check_model_file

            try:  # a PDF, a folder, a file that is gone: said here, not after a failed load
                check_model_file(settings.model_path)
            except ModelError as error:
                self.error.setText(f"Not saved: {error.message} {error.hint}".strip())
                return
        url, password = split_url_password(settings.remote_url)
        if password:  # kept like an API key: never in settings.json, never shown again
            try:
                store_url_password(url, password)
            except BackendError as error:
                self.error.setText(f"Not saved: {error.message} {error.hint}")
                return
            settings = settings.with_changes(remote_url=url)
            self.remote_url.setText(url)
        if not self._save_api_key(settings.remote_url):
            return
        self.result_settings = settings
        self.accept()

    def _save_api_key(self, url: str) -> bool:
        """The key goes to the system keyring under the server's URL, never to the
        settings file; False (and the reason shown) when it cannot be kept."""
        key = self.api_key.text().strip()
        if not key and not self.forget_key.isChecked():
            return True
        if not url:
            self.error.setText("Not saved: enter the server URL the API key is for.")
            return False
        try:
            store_api_key(url, "" if self.forget_key.isChecked() else key)
        except BackendError as error:
            self.error.setText(f"Not saved: {error.message} {error.hint}")
            return False
        return True
