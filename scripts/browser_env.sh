# Sourced by scripts/test after env.sh: Debian's chromium and chromium-driver for the web page's
# browser tests (tests/daemon/test_web_page.py), installed with apt-get when missing. Where apt is
# not available or the install fails, MOTIONCLONE_NO_BROWSER says why and those tests skip saying
# so; every other test runs as before.
install_browser() {
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "apt-get is not available: install chromium and chromedriver yourself"
    return 1
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "not root and no sudo: cannot apt-get install chromium"; return 1; }
    sudo="sudo -n"
  fi
  local install=($sudo apt-get install -y -q --no-install-recommends chromium chromium-driver)
  DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null 2>&1 && return 0
  $sudo apt-get update -q >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null 2>&1 && return 0
  echo "apt-get install chromium chromium-driver failed"
  return 1
}
if ! MOTIONCLONE_NO_BROWSER="$(install_browser)"; then
  echo "warning: the browser tests will be skipped: $MOTIONCLONE_NO_BROWSER" >&2
  export MOTIONCLONE_NO_BROWSER
else
  unset MOTIONCLONE_NO_BROWSER
fi
