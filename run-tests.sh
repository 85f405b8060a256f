#!/usr/bin/env bash
# The test command of the README: installs what is missing, builds, runs every test, and ends with the
# totals alone on the last line as "N passed, N failed, N skipped". Exit code 0 only when nothing failed.
set -uo pipefail
cd "$(dirname "$0")"

./pmem-emu/install-deps.sh || { echo "run-tests: could not install dependencies"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
# The lab (a VM with Debian's kernel, for the tests in tests/Writeboost.Tests/Lab): installs QEMU, the kernel and
# dm-writeboost-dkms the first time, publishes wb ReadyToRun. If it cannot be set up, its tests say why.
./pmem-emu/lab.sh setup || echo "run-tests: the lab could not be set up (see above); its tests will say why"

results=TestResults
rm -rf "$results"
dotnet test Writeboost.sln -c Release --logger trx --logger "console;verbosity=minimal" --results-directory "$results"
status=$?

shopt -s nullglob
trx_files=("$results"/*.trx)
if [ ${#trx_files[@]} -eq 0 ]; then
  echo "run-tests: no test results (the build failed?)"
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi

counter() { grep -o "<Counters [^>]*>" "$1" | grep -o " $2=\"[0-9]*\"" | grep -o "[0-9]*"; }
total=0; passed=0; failed=0
for trx in "${trx_files[@]}"; do
  total=$((total + $(counter "$trx" total)))
  passed=$((passed + $(counter "$trx" passed)))
  failed=$((failed + $(counter "$trx" failed) + $(counter "$trx" error) + $(counter "$trx" timeout) + $(counter "$trx" aborted)))
done
skipped=$((total - passed - failed))

# Say why each skipped test was skipped (the console logger does not).
if [ "$skipped" -gt 0 ] && command -v python3 >/dev/null 2>&1; then
  python3 - "${trx_files[@]}" <<'PY'
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
for path in sys.argv[1:]:
    for r in ET.parse(path).getroot().iterfind(".//t:UnitTestResult", ns):
        if r.get("outcome") not in ("Passed", "Failed", "Error", "Timeout", "Aborted"):
            message = r.find("t:Output/t:ErrorInfo/t:Message", ns)
            print(f"skipped: {r.get('testName')}: {message.text.strip() if message is not None and message.text else 'no reason given'}")
PY
fi

if [ $status -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1   # dotnet test failed without a failed test (a crash of the test host): count it.
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
