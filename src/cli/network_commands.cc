// network create, ls, inspect, rm, prune, connect, disconnect. Each parses, calls
// network::Networks (through container::Manager for the verbs that name a container), prints.
#include <iostream>
#include <memory>

#include "cli/context.h"
#include "container/container.h"
#include "util/strings.h"

namespace shale::cli {
namespace {

using nlohmann::json;

int Fail(std::string_view context, Error e, int status = 1) {
  return ReportError(std::move(e).Wrap(context), status);
}

void AddNetworkCreate(CLI::App* net, Context& ctx) {
  auto req = std::make_shared<network::CreateRequest>();
  auto driver = std::make_shared<std::string>("bridge");
  auto* sub = net->add_subcommand("create", "Create a bridge network");
  sub->add_option("--subnet", req->subnet, "Subnet in CIDR notation (default: a free one)");
  sub->add_option("--gateway", req->gateway, "Gateway address (default: the subnet's first)");
  sub->add_flag("--internal", req->internal, "No outbound access (no masquerade, no default route)");
  sub->add_option("-d,--driver", *driver, "Driver (only bridge)");
  sub->add_option("name", req->name, "NETWORK")->required();
  sub->callback([&ctx, req, driver] {
    ctx.action = [&ctx, req, driver]() -> int {
      if (*driver != "bridge")
        return Fail("network create", Error(Errc::kUnsupported, "driver \"" + *driver +
                                                                    "\": shale has only bridge networks"));
      auto mgr = container::Manager::Open(ctx.root);
      if (!mgr) return Fail("network create", std::move(mgr).error());
      auto n = (*mgr)->networks().Create(*req);
      if (!n) return Fail("network create", std::move(n).error());
      std::cout << n->id << "\n";
      return 0;
    };
  });
}

void AddNetworkLs(CLI::App* net, Context& ctx) {
  auto quiet = std::make_shared<bool>(false);
  auto* sub = net->add_subcommand("ls", "List networks");
  sub->alias("list");
  sub->add_flag("-q,--quiet", *quiet, "Only display network IDs");
  sub->callback([&ctx, quiet] {
    ctx.action = [&ctx, quiet]() -> int {
      auto mgr = container::Manager::Open(ctx.root);
      if (!mgr) return Fail("network ls", std::move(mgr).error());
      auto list = (*mgr)->networks().List();
      if (!list) return Fail("network ls", std::move(list).error());
      std::vector<std::vector<std::string>> rows = {{"NETWORK ID", "NAME", "DRIVER", "SCOPE"}};
      // docker lists the predefined host and none modes too; they have no id of their own.
      for (const auto& n : *list) {
        if (*quiet) std::cout << n.id.substr(0, 12) << "\n";
        rows.push_back({n.id.substr(0, 12), n.name, "bridge", "local"});
      }
      if (*quiet) return 0;
      rows.push_back({"-", "host", "host", "local"});
      rows.push_back({"-", "none", "null", "local"});
      size_t w[3] = {0, 0, 0};
      for (const auto& r : rows)
        for (size_t i = 0; i < 3; ++i) w[i] = std::max(w[i], r[i].size());
      for (const auto& r : rows) {
        std::string line;
        for (size_t i = 0; i < 3; ++i) line += r[i] + std::string(w[i] + 3 - r[i].size(), ' ');
        std::cout << line << r[3] << "\n";
      }
      return 0;
    };
  });
}

void AddNetworkInspect(CLI::App* net, Context& ctx) {
  auto refs = std::make_shared<std::vector<std::string>>();
  auto* sub = net->add_subcommand("inspect", "Display detailed information on networks");
  sub->add_option("networks", *refs, "NETWORK...")->required();
  sub->callback([&ctx, refs] {
    ctx.action = [&ctx, refs]() -> int {
      auto mgr = container::Manager::Open(ctx.root);
      if (!mgr) return Fail("network inspect", std::move(mgr).error());
      json out = json::array();
      int rc = 0;
      for (const std::string& r : *refs) {
        auto n = (*mgr)->networks().Get(r);
        if (!n) {
          rc = Fail("network inspect", std::move(n).error());
          continue;
        }
        out.push_back((*mgr)->networks().InspectJson(*n));
      }
      std::cout << out.dump(4) << "\n";
      return rc;
    };
  });
}

void AddNetworkRm(CLI::App* net, Context& ctx) {
  auto refs = std::make_shared<std::vector<std::string>>();
  auto* sub = net->add_subcommand("rm", "Remove one or more networks");
  sub->alias("remove");
  sub->add_option("networks", *refs, "NETWORK...")->required();
  sub->callback([&ctx, refs] {
    ctx.action = [&ctx, refs]() -> int {
      auto mgr = container::Manager::Open(ctx.root);
      if (!mgr) return Fail("network rm", std::move(mgr).error());
      int rc = 0;
      for (const std::string& r : *refs) {
        auto d = (*mgr)->networks().Remove(r);
        if (!d) rc = Fail("network rm", std::move(d).error());
        else std::cout << r << "\n";
      }
      return rc;
    };
  });
}

void AddNetworkPrune(CLI::App* net, Context& ctx) {
  auto force = std::make_shared<bool>(false);
  auto* sub = net->add_subcommand("prune", "Remove all networks no container uses");
  sub->add_flag("-f,--force", *force, "Do not prompt for confirmation (shale never prompts)");
  sub->callback([&ctx] {
    ctx.action = [&ctx]() -> int {
      auto mgr = container::Manager::Open(ctx.root);
      if (!mgr) return Fail("network prune", std::move(mgr).error());
      auto removed = (*mgr)->networks().Prune();
      if (!removed) return Fail("network prune", std::move(removed).error());
      if (!removed->empty()) {
        std::cout << "Deleted Networks:\n";
        for (const std::string& n : *removed) std::cout << n << "\n";
      }
      return 0;
    };
  });
}

void AddNetworkConnect(CLI::App* net, Context& ctx, bool connect) {
  struct Opts {
    std::string network, container;
    std::vector<std::string> aliases;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = net->add_subcommand(connect ? "connect" : "disconnect",
                                  connect ? "Connect a running container to a network"
                                          : "Disconnect a container from a network");
  if (connect) sub->add_option("--alias", o->aliases, "Another name on this network")->allow_extra_args(false);
  sub->add_option("network", o->network, "NETWORK")->required();
  sub->add_option("container", o->container, "CONTAINER")->required();
  sub->callback([&ctx, o, connect] {
    ctx.action = [&ctx, o, connect]() -> int {
      const char* verb = connect ? "network connect" : "network disconnect";
      auto mgr = container::Manager::Open(ctx.root);
      if (!mgr) return Fail(verb, std::move(mgr).error());
      auto id = (*mgr)->Resolve(o->container);
      if (!id) return Fail(verb, std::move(id).error());
      auto done = connect ? (*mgr)->networks().Connect(*id, {o->network, o->aliases})
                          : (*mgr)->networks().Disconnect(*id, o->network);
      if (!done) return Fail(verb, std::move(done).error());
      return 0;
    };
  });
}

}  // namespace

void RegisterNetworkCommands(CLI::App& app, Context& ctx) {
  if (!ctx.Wants("network")) return;
  auto* net = app.add_subcommand("network", "Manage networks (bridge networks over CNI)");
  net->require_subcommand(1);
  AddNetworkCreate(net, ctx);
  AddNetworkLs(net, ctx);
  AddNetworkInspect(net, ctx);
  AddNetworkRm(net, ctx);
  AddNetworkPrune(net, ctx);
  AddNetworkConnect(net, ctx, true);
  AddNetworkConnect(net, ctx, false);
}

}  // namespace shale::cli
