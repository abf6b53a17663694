#include "util/error.h"

#include <cstring>

namespace shale {

Errc ErrcFromErrno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return Errc::kNotFound;
    case EEXIST:
    case ENOTEMPTY:
      return Errc::kAlreadyExists;
    case EINVAL:
    case ENAMETOOLONG:
    case EXDEV:
    case ELOOP:
      return Errc::kInvalidArgument;
    case EACCES:
    case EPERM:
    case EROFS:
      return Errc::kPermission;
    case ENOSYS:
    case EOPNOTSUPP:
      return Errc::kUnsupported;
    case EBUSY:
    case EAGAIN:
      return Errc::kBusy;
    case EINTR:
      return Errc::kCancelled;
    default:
      return Errc::kIo;
  }
}

Error Error::FromErrno(int err, std::string_view what) {
  Error e(ErrcFromErrno(err), std::string(what) + ": " + std::strerror(err));
  e.errno_ = err;
  return e;
}

}  // namespace shale
