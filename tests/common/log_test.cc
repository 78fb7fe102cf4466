// common/log: the event line formats with hostile values, read back by an independent JSON
// parser (python3's json, strict about control characters, and a strict UTF-8 decode), the
// level filter, and gRPC's log routed through the logger.
#include "common/log.h"

#include <grpc/support/log.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "tests/test_support.h"

namespace darvoza::log {
namespace {

using darvoza::testing::ReadFileForTest;
using darvoza::testing::TempDir;
using darvoza::testing::WriteFileForTest;

// Each line of `path` decoded as strict UTF-8 and parsed as one JSON object, printed back as
// canonical JSON (sorted keys, ASCII only), one per line; "ERROR ..." for a line that fails.
std::vector<std::string> ParseJsonLinesWithPython(const TempDir& dir, const std::string& path) {
  const std::string script = dir.File("parse.py");
  WriteFileForTest(script,
                   "import json, sys\n"
                   "for raw in open(sys.argv[1], 'rb').read().split(b'\\n')[:-1]:\n"
                   "    try:\n"
                   "        obj = json.loads(raw.decode('utf-8', 'strict'))\n"
                   "        assert isinstance(obj, dict)\n"
                   "        print(json.dumps(obj, sort_keys=True, ensure_ascii=True))\n"
                   "    except Exception as e:\n"
                   "        print('ERROR', type(e).__name__)\n");
  const std::string out = dir.File("parsed.txt");
  const std::string command = "python3 " + script + " " + path + " > " + out;
  REQUIRE(std::system(command.c_str()) == 0);
  std::vector<std::string> lines = absl::StrSplit(ReadFileForTest(out), '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

const absl::Time kTime = absl::FromUnixSeconds(1764568800) + absl::Microseconds(123456);

// Values an outside party can put into a log line: a status message from a peer, an
// administrator's reason, a path.
const std::string kQuote = "say \"hi\" \\ back";
const std::string kNewline = "first\nsecond\r\n{\"event\":\"forged\"}";
const std::string kControl = std::string("nul\0bell\x07" "del\x7f" "tab\t", 17);
const std::string kNotUtf8 = "bad\xff\xfe" "end\xc3";   // stray bytes and a cut sequence
const std::string kUtf8 = "Soliq qo\xca\xbbmitasi \xe2\x82\xac";  // kept as it is

TEST_CASE("JSON lines: hostile values stay one valid object in valid UTF-8", "[log]") {
  TempDir dir;
  const std::vector<Field> fields = {{"quote", kQuote},   {"newline", kNewline},
                                     {"control", kControl}, {"not_utf8", kNotUtf8},
                                     {"utf8", kUtf8},       {"seq", 42},
                                     {"negative", -7},      {"empty", ""}};
  const std::string line = FormatLine(Format::kJson, kTime, Level::kWarn, "darvoza-ss",
                                      "call.refused", kNewline, fields);
  CHECK(line.find('\n') == std::string::npos);
  CHECK(line.find('\r') == std::string::npos);
  WriteFileForTest(dir.File("log.json"), line + "\n");

  const std::vector<std::string> parsed = ParseJsonLinesWithPython(dir, dir.File("log.json"));
  REQUIRE(parsed.size() == 1);
  CHECK(parsed[0] ==
        "{\"control\": \"nul\\u0000bell\\u0007del\\u007ftab\\t\", \"empty\": \"\", "
        "\"event\": \"call.refused\", \"level\": \"warn\", "
        "\"msg\": \"first\\nsecond\\r\\n{\\\"event\\\":\\\"forged\\\"}\", \"negative\": -7, "
        "\"newline\": \"first\\nsecond\\r\\n{\\\"event\\\":\\\"forged\\\"}\", "
        "\"not_utf8\": \"bad\\ufffd\\ufffdend\\ufffd\", \"program\": \"darvoza-ss\", "
        "\"quote\": \"say \\\"hi\\\" \\\\ back\", \"seq\": 42, "
        "\"time\": \"2025-12-01T06:00:00.123456Z\", "
        "\"utf8\": \"Soliq qo\\u02bbmitasi \\u20ac\"}");
}

TEST_CASE("Text lines: one line, values quoted and escaped where needed", "[log]") {
  const std::string line =
      FormatLine(Format::kText, kTime, Level::kInfo, "darvoza-registry", "registry.start",
                 "serving\nnow", {{"public", "127.0.0.1:4400"}, {"reason", kQuote},
                                  {"bytes", kNotUtf8}, {"utf8", kUtf8}, {"n", 3}, {"empty", ""}});
  CHECK(line ==
        "2025-12-01T06:00:00.123456Z INFO darvoza-registry registry.start: serving\\nnow "
        "public=127.0.0.1:4400 reason=\"say \\\"hi\\\" \\\\ back\" "
        "bytes=\"bad\\xff\\xfeend\\xc3\" utf8=\"" + kUtf8 + "\" n=3 empty=\"\"");
  const std::string control =
      FormatLine(Format::kText, kTime, Level::kError, "p", "e", kControl, {});
  CHECK(control.find('\0') == std::string::npos);
  CHECK(control.find('\t') == std::string::npos);
  CHECK(control == "2025-12-01T06:00:00.123456Z ERROR p e: nul\\x00bell\\x07del\\x7ftab\\t");
}

TEST_CASE("ParseLevel and ParseFormat accept the documented names only", "[log]") {
  CHECK(*ParseLevel("debug") == Level::kDebug);
  CHECK(*ParseLevel("info") == Level::kInfo);
  CHECK(*ParseLevel("warn") == Level::kWarn);
  CHECK(*ParseLevel("warning") == Level::kWarn);
  CHECK(*ParseLevel("error") == Level::kError);
  CHECK(ParseLevel("INFO").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(ParseLevel("").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(*ParseFormat("json") == Format::kJson);
  CHECK(*ParseFormat("text") == Format::kText);
  CHECK(ParseFormat("xml").status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("The logger filters by level, and gRPC's log goes through it", "[log]") {
  TempDir dir;
  SimulatedClock clock(kTime);
  Options options;
  options.program = "log-test";
  options.format = Format::kJson;
  options.level = Level::kInfo;
  options.path = dir.File("events.log");
  options.clock = &clock;
  REQUIRE(InitLogging(options).ok());

  Event(Level::kDebug, "hidden.debug", "");
  Event(Level::kInfo, "shown.info", "", {{"member", "UZ/GOV/1"}});
  // Normal connection noise from gRPC's TLS layer is debug; any other gRPC error is warn.
  gpr_log(GPR_ERROR, "No match found for server name: %s.", "127.0.0.1");
  gpr_log(GPR_ERROR, "a gRPC error: %s", "\"quoted\"\n");
  ApplyReloadedLevel(Level::kDebug, "ss.toml");
  CHECK(CurrentLevel() == Level::kDebug);
  Event(Level::kDebug, "shown.debug", "");
  ApplyReloadedLevel(absl::InvalidArgumentError("log level must be one of ..."), "ss.toml");
  CHECK(CurrentLevel() == Level::kDebug);
  SetLevel(Level::kError);
  Event(Level::kWarn, "hidden.warn", "");
  CHECK(InitLogging(Options{}).ok());  // back to stderr for the rest of the process

  const std::vector<std::string> parsed = ParseJsonLinesWithPython(dir, options.path);
  REQUIRE(parsed.size() == 5);
  CHECK(parsed[0] ==
        "{\"event\": \"shown.info\", \"level\": \"info\", \"member\": \"UZ/GOV/1\", "
        "\"program\": \"log-test\", \"time\": \"2025-12-01T06:00:00.123456Z\"}");
  CHECK(parsed[1].find("\"event\": \"grpc\"") != std::string::npos);
  CHECK(parsed[1].find("\"level\": \"warn\"") != std::string::npos);
  CHECK(parsed[1].find("\"msg\": \"a gRPC error: \\\"quoted\\\"\\n\"") != std::string::npos);
  CHECK(parsed[2].find("\"event\": \"log.level\"") != std::string::npos);
  CHECK(parsed[2].find("\"new\": \"debug\", \"old\": \"info\"") != std::string::npos);
  CHECK(parsed[3].find("\"event\": \"shown.debug\"") != std::string::npos);
  CHECK(parsed[4].find("\"event\": \"log.reload_failed\"") != std::string::npos);
  for (const std::string& p : parsed) CHECK(p.find("No match found") == std::string::npos);
}

TEST_CASE("InitLogging refuses a log file it cannot open", "[log]") {
  TempDir dir;
  // spdlog creates missing directories, so the parent is a regular file.
  WriteFileForTest(dir.File("plain"), "");
  Options options;
  options.path = dir.File("plain") + "/events.log";
  CHECK(InitLogging(options).code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace darvoza::log
