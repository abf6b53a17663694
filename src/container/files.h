// The files a container keeps beside its layers: run state (JSON), the init layer's
// placeholders, hosts/hostname/resolv.conf, and the --init binary.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "util/dir.h"
#include "util/error.h"

namespace shale::container {

// Temp file + rename, without fsync: readers never see a torn file, and run state does not
// need to survive a power cut (the containers it describes do not either).
Result<void> WriteJsonFast(const std::string& path, const nlohmann::json& j);
// kNotFound if absent, kCorrupt if it does not parse.
Result<nlohmann::json> ReadJsonFile(const std::string& path);

// Docker's init layer: empty etc/hosts, etc/hostname, etc/resolv.conf, /.dockerenv,
// dev/console; etc/mtab -> /proc/mounts; dirs dev/pts, dev/shm, proc, sys.
Result<void> FillInitLayer(const Dir& diff);

// containers/<id>/{hostname,hosts,resolv.conf}. --network host copies the host's hosts and
// resolv.conf; otherwise hosts holds the loopback lines and resolv.conf the host's with
// loopback nameservers removed.
Result<void> WriteHostFiles(const std::string& dir, const std::string& hostname,
                            const std::string& network_mode);

// shale-init beside the running shale binary (or $SHALE_INIT); "" if there is none.
std::string FindInitBinary();

}  // namespace shale::container
