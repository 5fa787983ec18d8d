"""Start-up checks that run before Qt can abort the process."""

from ssl_studio.gui.app import NO_DISPLAY, XCB_HINT, display_problem, main


def found(name):
    return f"lib{name}.so.0"


def missing(name):
    return None


def test_no_display_on_linux_says_so():
    assert display_problem({}, "linux", found) == NO_DISPLAY


def test_x11_without_xcb_cursor_prints_the_install_hint():
    message = display_problem({"DISPLAY": ":0"}, "linux", missing)
    assert XCB_HINT in message
    assert "libxcb-cursor0" in message


def test_wayland_or_a_working_x11_is_fine():
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux", missing) is None
    assert display_problem({"DISPLAY": ":0"}, "linux", found) is None


def test_an_explicit_platform_is_respected():
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux", missing) is None
    assert XCB_HINT in display_problem({"QT_QPA_PLATFORM": "xcb"}, "linux", missing)


def test_other_systems_are_not_checked():
    assert display_problem({}, "darwin", missing) is None
    assert display_problem({}, "win32", missing) is None


def test_more_than_one_folder_is_refused(capsys):
    assert main(["a", "b"]) == 2
    assert "at most one folder" in capsys.readouterr().err
