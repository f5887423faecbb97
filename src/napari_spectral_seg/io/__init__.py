"""Reading and writing the files of the command line, of ``batch`` and of napari's File > Save.

Images (:mod:`.images`: whole, or one frame of a series; RGB(A) TIFFs and
colour PNG/JPEG with their channel axis), their voxel size (:mod:`.voxels`:
ImageJ, OME-TIFF, resolution tags), labels (:mod:`.labels`: written
atomically, with the parameters that made them and the voxel size; the
parameters stored in an output, whether an output was written by this
package, the identity of an input file), and parameter files
(:mod:`.parameter_files`: JSON, YAML, or a labels TIFF).

Errors a user can fix (a missing or unreadable file, a suffix that is not
supported, an output directory that does not exist) are :class:`InputError`,
and :class:`ParameterFileError` for parameter files: both are
:class:`ValueError` subclasses whose message names the file; the command line
prints them as one line.
"""

from .common import INPUT_IDENTITY_KEY, METADATA_KEY, TABLE_RECORD_KEY, InputError, ParameterFileError
from .images import (
    INPUT_SUFFIXES,
    READ_SUFFIXES,
    check_not_special,
    input_kind,
    probe,
    read_frame,
    read_image,
    tiff_channel_axis,
    tiff_colour_axis,
)
from .labels import (
    WRITE_SUFFIXES,
    check_output_path,
    check_written_by_us,
    file_identity,
    is_inside,
    listing_digest,
    same_content,
    same_file,
    stored_input_identity,
    stored_parameters,
    stored_table_record,
    write_labels,
    written_by_us,
)
from .parameter_files import FILE_KEYS, load_parameters
from .voxels import VoxelSize, read_voxel_size, spacing_and_voxel_size

__all__ = [
    "FILE_KEYS",
    "INPUT_IDENTITY_KEY",
    "INPUT_SUFFIXES",
    "METADATA_KEY",
    "READ_SUFFIXES",
    "WRITE_SUFFIXES",
    "InputError",
    "ParameterFileError",
    "VoxelSize",
    "check_not_special",
    "check_output_path",
    "check_written_by_us",
    "file_identity",
    "is_inside",
    "input_kind",
    "listing_digest",
    "load_parameters",
    "probe",
    "read_frame",
    "read_image",
    "read_voxel_size",
    "same_content",
    "same_file",
    "spacing_and_voxel_size",
    "stored_input_identity",
    "stored_table_record",
    "TABLE_RECORD_KEY",
    "stored_parameters",
    "tiff_channel_axis",
    "tiff_colour_axis",
    "write_labels",
    "written_by_us",
]
