# Fails when sdk/include/aether/abi.h changes without its pinned hash being
# updated: an ABI change must be a deliberate act (bump AETHER_ABI_MINOR for
# an append, AETHER_ABI_MAJOR for a break, then update abi.sha256).
file(SHA256 "${ABI_HEADER}" actual)
file(READ "${PIN_FILE}" pinned)
string(STRIP "${pinned}" pinned)
if(NOT actual STREQUAL pinned)
  message(FATAL_ERROR "abi.h changed: sha256 ${actual}, pinned ${pinned} in ${PIN_FILE}. "
    "If the change is deliberate, bump the ABI version in abi.h and update the pin.")
endif()
message(STATUS "abi.h matches its pin ${pinned}")
