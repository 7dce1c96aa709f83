// Shadows <fmt/...> for src/base and src/notify, the only core libraries the
// mail plugin links: every imap/lmtp/doveadm process loads the plugin, and
// libfmt.so would add to each one's start-up. Use std::to_string and string
// concatenation there instead (see src/CMakeLists.txt).
#error "src/base and src/notify are linked into the mail plugin: no fmt here"
