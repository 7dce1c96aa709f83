# cmake/DovecotVersion.cmake: which Dovecot the modules are built for.
#
# Every module we build (mail plugin, doveadm module, 2.4 settings module)
# exports <name>_version = DOVECOT_ABI_VERSION, and Dovecot refuses to load a
# module built for another ABI ("Module is for different ABI version"). 2.4
# changes the ABI with every release (2.4.3 moved fields of struct mail_user),
# so a build belongs to exactly one Dovecot release and the build must use the
# headers of the Dovecot it will run on.
#
# Input:  DOVECOT_CONFIG       dovecot-config of that Dovecot (dovecot-dev),
#                              default /usr/lib/dovecot/dovecot-config
#         DOVECOT_INCLUDE_DIR  headers; default: LIBDOVECOT_INCLUDE from
#                              dovecot-config (Debian: /usr/include/dovecot)
# Output: DOVECOT_VERSION       e.g. "2.4.1-4"   (config.h DOVECOT_VERSION)
#         DOVECOT_ABI_VERSION   e.g. "2.4.ABIv1" (config.h DOVECOT_ABI_VERSION)
#         DOVECOT_VERSION_MAJOR/_MINOR/_MICRO
#         DREPL_DOVECOT_24      ON for Dovecot >= 2.4
#         DOVECOT_MODULEDIR     dovecot_moduledir from dovecot-config
# Debian's dovecot-config carries no version line, so the version and ABI come
# from the config.h next to the headers dovecot-config points at.

set(DOVECOT_CONFIG "/usr/lib/dovecot/dovecot-config" CACHE FILEPATH
    "dovecot-config of the Dovecot to build for (dovecot-dev)")

if(NOT EXISTS "${DOVECOT_CONFIG}")
  message(FATAL_ERROR "DOVECOT_CONFIG=${DOVECOT_CONFIG} not found: install dovecot-dev, "
                      "set DOVECOT_CONFIG, or -DDREPL_BUILD_PLUGIN=OFF")
endif()
file(STRINGS "${DOVECOT_CONFIG}" _dc_lines)
set(_dc_include "")
set(DOVECOT_MODULEDIR "/usr/lib/dovecot/modules")
foreach(_l IN LISTS _dc_lines)
  if(_l MATCHES "^LIBDOVECOT_INCLUDE=['\"]?-I([^ '\"]+)")
    set(_dc_include "${CMAKE_MATCH_1}")
  elseif(_l MATCHES "^dovecot_moduledir=['\"]?([^'\"]+)")
    set(DOVECOT_MODULEDIR "${CMAKE_MATCH_1}")
  endif()
endforeach()
if(NOT _dc_include)
  set(_dc_include "/usr/include/dovecot")
endif()
set(DOVECOT_INCLUDE_DIR "${_dc_include}" CACHE PATH "Dovecot headers (dovecot-dev)")

if(NOT EXISTS "${DOVECOT_INCLUDE_DIR}/config.h" OR NOT EXISTS "${DOVECOT_INCLUDE_DIR}/notify-plugin.h")
  message(FATAL_ERROR "Dovecot headers not found in DOVECOT_INCLUDE_DIR=${DOVECOT_INCLUDE_DIR}: "
                      "install dovecot-dev, set DOVECOT_INCLUDE_DIR, or -DDREPL_BUILD_PLUGIN=OFF")
endif()

file(STRINGS "${DOVECOT_INCLUDE_DIR}/config.h" _dv_defs REGEX "^#define DOVECOT_(ABI_)?VERSION")
foreach(_d IN LISTS _dv_defs)
  if(_d MATCHES "^#define DOVECOT_ABI_VERSION \"([^\"]+)\"")
    set(DOVECOT_ABI_VERSION "${CMAKE_MATCH_1}")
  elseif(_d MATCHES "^#define DOVECOT_VERSION \"([^\"]+)\"")
    set(DOVECOT_VERSION "${CMAKE_MATCH_1}")
  elseif(_d MATCHES "^#define DOVECOT_VERSION_(MAJOR|MINOR|MICRO) ([0-9]+)")
    set(DOVECOT_VERSION_${CMAKE_MATCH_1} "${CMAKE_MATCH_2}")
  endif()
endforeach()
if(NOT DOVECOT_ABI_VERSION OR NOT DOVECOT_VERSION OR NOT DEFINED DOVECOT_VERSION_MINOR)
  message(FATAL_ERROR "${DOVECOT_INCLUDE_DIR}/config.h defines no DOVECOT_VERSION / "
                      "DOVECOT_ABI_VERSION / DOVECOT_VERSION_MINOR: not a Dovecot build tree?")
endif()
if(DOVECOT_VERSION_MAJOR GREATER 2 OR DOVECOT_VERSION_MINOR GREATER_EQUAL 4)
  set(DREPL_DOVECOT_24 ON)
else()
  set(DREPL_DOVECOT_24 OFF)
endif()
message(STATUS "Building Dovecot modules for Dovecot ${DOVECOT_VERSION} "
               "(ABI ${DOVECOT_ABI_VERSION}, headers ${DOVECOT_INCLUDE_DIR})")

# Compile settings every target that includes Dovecot headers needs
# (dovecot24-port.md §2): HAVE_CONFIG_H (lib.h includes config.h only then),
# the headers, and gnu dialects (the headers use typeof).
function(drepl_dovecot_module_flags target)
  target_compile_definitions(${target} PRIVATE HAVE_CONFIG_H)
  target_include_directories(${target} PRIVATE ${DOVECOT_INCLUDE_DIR})
  set_target_properties(${target} PROPERTIES C_STANDARD 11 C_EXTENSIONS ON
                                             CXX_STANDARD 20 CXX_EXTENSIONS ON)
endfunction()
