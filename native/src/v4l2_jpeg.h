// JPEG encoding for cameras that only offer raw formats, through libjpeg-turbo's
// TurboJPEG API loaded at run time with dlopen: the addon builds without its
// headers, and a machine without the library only loses this option.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace devplane {
namespace v4l2 {

// $DEVPLANE_LIBTURBOJPEG when set, else libturbojpeg.so.0.
std::string jpegLibraryName();
// Loads the library once; false with the reason (and how to install it) in *error.
bool jpegAvailable(std::string *error);
// The raw formats encode() takes: YUYV, NV12, GREY, RGB24, BGR24.
bool jpegEncodable(uint32_t fourcc);

class JpegEncoder {
 public:
  JpegEncoder() = default;
  ~JpegEncoder();
  JpegEncoder(const JpegEncoder &) = delete;
  JpegEncoder &operator=(const JpegEncoder &) = delete;

  // Encodes one frame into a malloc'd block (*out, *outLen; the caller frees it).
  bool encode(uint32_t fourcc, uint32_t width, uint32_t height, uint32_t stride, const uint8_t *data, size_t bytes,
              int quality, uint8_t **out, size_t *outLen, std::string *error);

 private:
  void *handle_ = nullptr;
  std::vector<uint8_t> planes_;
};

}  // namespace v4l2
}  // namespace devplane
