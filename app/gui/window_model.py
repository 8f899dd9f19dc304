"""The main window's model: loading it (with llama.cpp's progress), unloading it, and
the settings that change how it is loaded."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.gui.safe_text import plain_html
from app.gui.settings_dialog import SettingsDialog
from app.gui.theme import apply_theme
from app.gui.window_state import WindowState
from app.llm.factory import DEMO_NOTE
from app.settings import Settings, save_settings


class WindowModel(WindowState):
    def _load_model(self) -> None:
        self._model_loading("Loading the model… (Cancel stops it)")
        self.model.worker.prepare_load()
        self.request_load.emit(self.settings)

    def _model_loading(self, text: str) -> None:
        """A load begun: by the window, or by a resume that needs its run's context. A
        plan made before is for the model as it was (its context, its speed): the next
        one comes once this load is done."""
        self.model_loaded = False
        self.model_label.setText(text)
        self.model_busy.setRange(0, 0)
        self.model_busy.show()
        self._forget_plan("The plan follows once the model is loaded.")
        self.timeline.cancel_button.setEnabled(True)  # the label says Cancel stops it

    def _forget_plan(self, why: str) -> None:
        self.plan = None
        self.ask_panel.ask_button.setEnabled(False)
        self.ask_panel.set_plan_text(why)

    def _load_ended(self) -> None:
        self.model_busy.hide()
        self.timeline.cancel_button.setEnabled(self.busy)

    def _model_load_progress(self, fraction: float) -> None:
        if self.model_busy.maximum() == 0:
            self.model_busy.setRange(0, 100)
        self.model_busy.setValue(int(fraction * 100))

    def _model_load_cancelled(self) -> None:
        self._load_ended()
        self.model_loaded = False
        self._pending_ask = None
        self.model_label.setText("Model loading cancelled; Model > Load model loads it.")
        self._forget_plan("No model loaded: Model > Load model loads it.")

    def unload_model(self) -> None:
        if self.busy:
            self.statusBar().showMessage("Cancel the run before unloading the model.", 5000)
            return
        self.request_unload.emit()

    def _model_unloaded(self) -> None:
        self.model_loaded = False
        self.model_label.setText("Model unloaded to free memory; it loads again when you ask.")

    def open_models_dialog(self) -> None:
        from app.gui.models_dialog import ModelsDialog
        from app.llm.hardware import detect_hardware

        self.models_dialog = ModelsDialog(detect_hardware(), self)
        self.models_dialog.model_chosen.connect(
            lambda path: self.apply_settings(self.settings.with_changes(model_path=path))
        )
        self.models_dialog.show()

    def _model_loaded(self, name: str, is_demo: bool) -> None:
        self.model_loaded = True
        self.timeline.set_demo(is_demo)
        self._load_ended()
        if is_demo:
            self.model_label.setText(
                f"Model: {name} - a tiny demo model with poor answers. For real work choose "
                "a QwenLong-L1.5 GGUF in Model > Get QwenLong-L1.5… or File > Settings."
            )
        else:
            placed = self.model.worker.plan_description
            backend = self.model.worker.backend
            if backend is not None and backend.identity.backend == "remote":
                placed = f"on the server {backend.identity.path}"  # its URL, no password
            self.model_label.setText(f"Model: {name}" + (f" · {placed}" if placed else ""))
        self.model_ready.emit()
        self.ask_panel._replan()

    def _model_failed(self, message: str) -> None:
        self._load_ended()
        self._pending_ask = None  # it cannot run: said by the dialog below
        self.model_label.setText("No model loaded - open File > Settings to choose one.")
        self._forget_plan("No model loaded: choose one in File > Settings (or Model > Load).")
        QMessageBox.warning(self, "The model could not be loaded", plain_html(message))

    def about_model(self) -> None:
        """Help > About the model: the model this window runs (name, file or server,
        context, placement), and the demo's note only for the demo."""
        worker = self.model.worker
        backend = worker.backend
        if not self.model_loaded or backend is None:
            text = self.model_label.toolTip() or "No model loaded."
        else:
            identity = backend.identity
            where = "Server" if identity.backend == "remote" else "File"
            lines = [identity.name, f"{where}: {identity.path}"]
            lines.append(f"Context: {identity.n_ctx:,} tokens")
            if worker.plan_description:
                lines.append(f"Placement: {worker.plan_description}")
            lines += [f"{key}: {value}" for key, value in identity.details.items()]
            if self.timeline.is_demo:
                lines += ["", DEMO_NOTE]
            text = "\n".join(lines)
        self._about_model = QMessageBox(QMessageBox.Icon.Information, "Model", text, parent=self)
        self._about_model.setTextFormat(Qt.TextFormat.PlainText)  # names come from files
        self._about_model.show()

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() and dialog.result_settings is not None:
            self.apply_settings(dialog.result_settings)

    def apply_settings(self, settings: Settings) -> None:
        save_settings(settings)
        apply_theme(settings.theme)
        # The look and the recent-files list do not need the model loaded again.
        ui_only = {"theme": self.settings.theme, "recent_files": self.settings.recent_files}
        reload = settings.with_changes(**ui_only) != self.settings
        self.settings = settings
        if reload:
            self._load_model()
