#include "security_server/metrics.h"

#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace darvoza::ss {

void MetricsRegistry::Increment(absl::string_view name, double delta) {
  absl::MutexLock lock(&mu_);
  auto it = series_.find(name);
  if (it == series_.end()) it = series_.emplace(std::string(name), Series{}).first;
  it->second.value += delta;
  it->second.counter = true;
}

void MetricsRegistry::SetGauge(absl::string_view name, double value) {
  absl::MutexLock lock(&mu_);
  auto it = series_.find(name);
  if (it == series_.end()) it = series_.emplace(std::string(name), Series{}).first;
  it->second.value = value;
  it->second.counter = false;
}

void MetricsRegistry::Remove(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = series_.find(name);
  if (it != series_.end()) series_.erase(it);
}

double MetricsRegistry::Get(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = series_.find(name);
  return it == series_.end() ? 0 : it->second.value;
}

void MetricsRegistry::AddCollector(std::function<void(MetricsRegistry&)> collector) {
  absl::MutexLock lock(&collectors_mu_);
  collectors_.push_back(std::move(collector));
}

std::string MetricsRegistry::RenderText() {
  {
    // Collectors call SetGauge, so they run under collectors_mu_ only.
    absl::MutexLock lock(&collectors_mu_);
    for (auto& collector : collectors_) collector(*this);
  }
  absl::MutexLock lock(&mu_);
  std::string out;
  std::set<std::string> typed;
  for (const auto& [name, series] : series_) {
    std::string family = name.substr(0, name.find('{'));
    if (typed.insert(family).second) {
      absl::StrAppend(&out, "# TYPE ", family, series.counter ? " counter\n" : " gauge\n");
    }
    if (std::isfinite(series.value) && series.value == std::floor(series.value) &&
        std::fabs(series.value) < 1e15) {
      absl::StrAppend(&out, name, " ", static_cast<int64_t>(series.value), "\n");
    } else {
      absl::StrAppend(&out, name, " ", absl::StrFormat("%g", series.value), "\n");
    }
  }
  return out;
}

}  // namespace darvoza::ss
