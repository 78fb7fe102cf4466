// The release every Darvoza program reports with --version (one definition, so the CLI and
// the daemons can never disagree).
#ifndef DARVOZA_COMMON_VERSION_H_
#define DARVOZA_COMMON_VERSION_H_

namespace darvoza {

inline constexpr char kDarvozaVersion[] = "0.1.0";

}  // namespace darvoza

#endif  // DARVOZA_COMMON_VERSION_H_
