// Child process for the apply crash tests: applies an evaluation run and kills
// itself with SIGKILL at the given point, like a power cut.
//   apply_crash_helper DB_URL WORLD RUN frozen|switched|done|in-transaction
// With PHASE pause-frozen or pause-switched it stops itself (SIGSTOP) there
// instead, holding its claim on the apply, for the test to kill later; with
// `lead` it first takes the scheduler leadership, as the leader applying a
// scheduled run holds it.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "qmtl/store/sql_store.h"
#include "qmtl/world/world_service.h"

int main(int argc, char** argv) {
  if (argc != 5 && !(argc == 6 && std::string(argv[5]) == "lead")) {
    std::fprintf(stderr, "usage: apply_crash_helper DB_URL WORLD RUN PHASE [lead]\n");
    return 2;
  }
  const std::string db = argv[1], world = argv[2], run = argv[3], at = argv[4];
  const bool lead = argc == 6;
  if (at == "in-transaction") {
    // Half of a write: state changed and audited, never committed.
    auto opened = qmtl::store::open_sql_db(db);
    if (!opened) return 3;
    auto& conn = *opened;
    (void)conn->begin_write();
    (void)conn->exec("UPDATE strategies SET state = 'Live' WHERE state = 'DryRun'");
    (void)conn->exec("UPDATE activations SET active = 1, frozen = 1");
    (void)conn->exec(
        "INSERT INTO audit_log (at_us, actor, world_id, entity, entity_id, event, reason) "
        "VALUES (0, 'x', 'w', 'strategy', 's', 'PROMOTE', 'torn')");
    ::kill(::getpid(), SIGKILL);
  }
  auto store = qmtl::store::open_store(db);
  if (!store) return 3;
  qmtl::SystemClock clock;
  qmtl::world::WorldService svc(**store, clock);
  // As the scheduler leader would: take the leadership first (and hold it
  // while paused, so replicas started now stand by).
  if (lead) {
    auto l = svc.lead_scheduler();
    if (!l || !*l) {
      std::fprintf(stderr, "could not take the scheduler leadership\n");
      return 4;
    }
  }
  qmtl::world::WorldService::ApplyHooks hooks{.after_phase = [&](std::string_view phase) {
    if (phase == at) ::kill(::getpid(), SIGKILL);
    if ("pause-" + std::string(phase) == at) ::kill(::getpid(), SIGSTOP);
  }};
  auto r = svc.apply_run(world, run, "crash-helper", &hooks);
  if (!r) {
    std::fprintf(stderr, "%s\n", r.error().message.c_str());
    return 1;
  }
  return 0;
}
