# MotionClone Studio on this workstation (Windows): a venv for the daemon in the user data dir, the
# right torch build (installer\torch_setup.py), the project, then `motionclone install` (scheduled task + editor plugins).
# Re-run to upgrade in place. Extra arguments go to `motionclone install` (e.g. --no-resolve, --dry-run).
#   powershell -ExecutionPolicy Bypass -File installer\install.ps1 [--torch-index auto|pypi|URL] [--no-service] [--no-blender] [--no-resolve]
# Undo: `motionclone uninstall`, then delete the venv folder this script prints.
$ErrorActionPreference = "Stop"

$Source = Split-Path -Parent $PSScriptRoot
$Venv = Join-Path $env:LOCALAPPDATA "motionclone\venv"

function Find-Python {
    foreach ($version in "3.13", "3.12", "3.11", "3.10") {
        & py "-$version" -c "import sys" 2>$null
        if ($LASTEXITCODE -eq 0) { return @("py", "-$version") }
    }
    throw "install.ps1: Python 3.10 or newer is needed (python.org installer, with the py launcher)"
}

# --torch-index auto|pypi|URL is the bootstrap's own (torch_setup.py); the rest go to `motionclone install`.
$TorchIndex = "auto"
$Passed = @()
for ($i = 0; $i -lt $args.Count; $i++) {
    if ($args[$i] -eq "--torch-index") { $TorchIndex = $args[$i + 1]; $i++ }
    elseif ($args[$i] -like "--torch-index=*") { $TorchIndex = $args[$i].Substring(14) }
    else { $Passed += $args[$i] }
}

$Python = Join-Path $Venv "Scripts\python.exe"
if (-not (Test-Path $Python)) {
    Write-Host "creating $Venv"
    $launcher = Find-Python
    & $launcher[0] $launcher[1] -m venv $Venv
}
& $Python -m pip install --quiet --upgrade pip

& $Python (Join-Path $Source "installer\torch_setup.py") --torch-index $TorchIndex
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }

Write-Host "installing MotionClone Studio from $Source"
& $Python -m pip install --quiet --upgrade $Source
& (Join-Path $Venv "Scripts\motionclone.exe") install --source $Source @Passed
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
Write-Host "venv: $Venv (commands: $Venv\Scripts\motionclone.exe, motionclone-daemon.exe)"
