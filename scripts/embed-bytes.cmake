# embed-bytes.cmake: xs_embed_bytes(FILE VAR LEN), shared by the scripts that compile files into
# C (embed-migrations.cmake, embed-ui.cmake): sets VAR to the file's bytes as a C initialiser
# list ("0x2f,0x2a,...,0x00", NUL-terminated) and LEN to its length without the NUL.
function(xs_embed_bytes file var len)
  file(READ "${file}" hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR n "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  set(${var} "${bytes}0x00" PARENT_SCOPE)
  set(${len} "${n}" PARENT_SCOPE)
endfunction()

# xs_embed_write(OUT BODY): writes BODY to OUT only when it changed, so that nothing that
# depends on OUT rebuilds for nothing.
function(xs_embed_write out body)
  file(WRITE "${out}.tmp" "${body}")
  file(COPY_FILE "${out}.tmp" "${out}" ONLY_IF_DIFFERENT)
  file(REMOVE "${out}.tmp")
endfunction()
