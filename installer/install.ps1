# MotionClone Studio on this workstation (Windows): a venv for the daemon in the user data dir, the
# right torch build, the project, then `motionclone install` (scheduled task + editor plugins).
# Re-run to upgrade in place. Extra arguments go to `motionclone install` (e.g. --no-resolve, --dry-run).
#   powershell -ExecutionPolicy Bypass -File installer\install.ps1 [--no-service] [--no-blender] [--no-resolve]
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

# The PyTorch wheel index for this machine: the newest CUDA build the driver supports, else the CPU build.
function Get-TorchIndex {
    $smi = Get-Command nvidia-smi -ErrorAction SilentlyContinue
    if (-not $smi) { return "cpu" }
    $match = (& nvidia-smi | Select-String "CUDA Version: (\d+)\.(\d+)").Matches
    if (-not $match) { return "cpu" }
    $cuda = [int]($match[0].Groups[1].Value + $match[0].Groups[2].Value)
    foreach ($build in 128, 126, 124, 121, 118) { if ($cuda -ge $build) { return "cu$build" } }
    Write-Warning "the NVIDIA driver is too old for PyTorch's CUDA builds: using the CPU build"
    return "cpu"
}

$Python = Join-Path $Venv "Scripts\python.exe"
if (-not (Test-Path $Python)) {
    Write-Host "creating $Venv"
    $launcher = Find-Python
    & $launcher[0] $launcher[1] -m venv $Venv
}
& $Python -m pip install --quiet --upgrade pip

$Index = Get-TorchIndex
$Have = & $Python -c "import torch; print('cu' + torch.version.cuda.replace('.', '') if torch.version.cuda else 'cpu')" 2>$null
if ($Have -eq $Index) {
    Write-Host "keeping torch ($Have)"
} else {
    Write-Host "installing torch ($Index)"
    & $Python -m pip install --quiet --upgrade torch --index-url "https://download.pytorch.org/whl/$Index"
}

Write-Host "installing MotionClone Studio from $Source"
& $Python -m pip install --quiet --upgrade $Source
& (Join-Path $Venv "Scripts\motionclone.exe") install --source $Source @args
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
Write-Host "venv: $Venv (commands: $Venv\Scripts\motionclone.exe, motionclone-daemon.exe)"
