"""The real app, started as the `ssl-studio` command starts it (ssl_studio.cli.main), steered as a user would.

    python drive_app.py [DATA_DIR]

It prints a line when the app gets somewhere, for the tests to wait on: "shown" once the window is up and its
event loop runs; with a folder, "training RUN_DIR" once the first model reports progress (it trains for far
longer than any test lasts). Only the steering is added: signals, shutdown and exit code are the app's own.

Nothing is imported at the top: the UMAP process (spawn) imports this file again as its main module.
"""

import sys


def say(text: str) -> None:
    print(text, flush=True)


def steer(window) -> None:
    from PySide6.QtCore import QTimer

    QTimer.singleShot(0, lambda: say("shown"))  # runs once the event loop does
    window.data.datasetLoaded.connect(lambda _dataset: train(window))


def train(window) -> None:
    from PySide6.QtCore import QTimer

    page = window.train
    window.go("train")
    page.by_epochs.setChecked(True)
    page.epochs.setValue(page.epochs.maximum())
    page.control("batch_size").setValue(8)
    page.control("device").setCurrentText("cpu")
    page.start_button.click()

    def progressed() -> None:
        if window.session.run is not None and page.progress.value() > 0:
            poll.stop()
            say(f"training {window.session.run.path}")

    poll = QTimer(window, interval=20, timeout=progressed)
    poll.start()


def main() -> int:
    import signal

    from ssl_studio import cli

    # As from a terminal. A parent without job control (`cmd &` in a script, as CI may be started) hands its
    # children SIGINT ignored, and the app rightly keeps ignoring a signal it was started ignoring, as under nohup.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from ssl_studio.gui.main_window import MainWindow

    show = MainWindow.show

    def show_and_steer(window) -> None:
        show(window)
        steer(window)

    MainWindow.show = show_and_steer
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
